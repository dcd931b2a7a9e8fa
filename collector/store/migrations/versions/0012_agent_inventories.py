"""agent_inventories: the inventory leaves the agents row, which every heartbeat and batch
updates and which SQLite rewrites whole

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_inventories",
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name="fk_agent_inventories_agent_id_agents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agent_inventories"),
    )
    op.execute(
        "INSERT INTO agent_inventories (agent_id, facts, received_at, digest) "
        "SELECT id, inventory, COALESCE(inventory_at, enrolled_at), inventory_digest "
        # A JSON null is no inventory either.
        "FROM agents WHERE inventory IS NOT NULL AND CAST(inventory AS TEXT) <> 'null'"
    )
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("inventory_digest")
        batch.drop_column("inventory_at")
        batch.drop_column("inventory")


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("inventory", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("inventory_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("inventory_digest", sa.String(64), nullable=True))
    of_agent = "FROM agent_inventories i WHERE i.agent_id = agents.id"
    op.execute(
        f"UPDATE agents SET inventory = (SELECT facts {of_agent}), "
        f"inventory_at = (SELECT received_at {of_agent}), "
        f"inventory_digest = (SELECT digest {of_agent})"
    )
    op.drop_table("agent_inventories")
