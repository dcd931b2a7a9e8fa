"""service desk: machine tags, assignee and ticket lifecycle, flap history, maintenance windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("check_states") as batch:
        batch.add_column(sa.Column("changes", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("last_ticket_id", BIG_ID, nullable=True))
        batch.create_foreign_key(
            "fk_check_states_last_ticket_id_tickets",
            "tickets",
            ["last_ticket_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("assignee", sa.String(128), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("closed_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("flapping", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("sla_paused_at", UTC_TIME, nullable=True))
        batch.create_index("ix_tickets_assignee", ["assignee"])
    op.create_table(
        "maintenance_windows",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("starts_at", UTC_TIME, nullable=True),
        sa.Column("cron", sa.String(128), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("all_machines", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("agent_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_windows"),
    )


def downgrade() -> None:
    op.drop_table("maintenance_windows")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_assignee")
        for column in (
            "sla_paused_at",
            "reopen_count",
            "flapping",
            "resolved_by",
            "closed_at",
            "acknowledged_at",
            "assignee",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("check_states") as batch:
        batch.drop_constraint("fk_check_states_last_ticket_id_tickets", type_="foreignkey")
        batch.drop_column("last_ticket_id")
        batch.drop_column("changes")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("tags")
