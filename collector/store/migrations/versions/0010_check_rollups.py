"""hourly check rollups; indexes on the results that tickets and check states point at

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "check_rollups",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("hour", UTC_TIME, nullable=False),
        sa.Column("ok_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("critical_count", sa.Integer(), nullable=False),
        sa.Column("unknown_count", sa.Integer(), nullable=False),
        sa.Column("first_observed_at", UTC_TIME, nullable=False),
        sa.Column("last_observed_at", UTC_TIME, nullable=False),
        sa.Column("last_status", sa.SmallInteger(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_check_rollups_agent_id_agents", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_check_rollups"),
        sa.UniqueConstraint("agent_id", "check_id", "hour", name="uq_check_rollups_hour"),
    )
    op.create_index("ix_check_rollups_hour", "check_rollups", ["hour"])
    op.create_index("ix_tickets_evidence_result_id", "tickets", ["evidence_result_id"])
    op.create_index("ix_check_states_last_failure_id", "check_states", ["last_failure_id"])


def downgrade() -> None:
    op.drop_index("ix_check_states_last_failure_id", table_name="check_states")
    op.drop_index("ix_tickets_evidence_result_id", table_name="tickets")
    op.drop_index("ix_check_rollups_hour", table_name="check_rollups")
    op.drop_table("check_rollups")
