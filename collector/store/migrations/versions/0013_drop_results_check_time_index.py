"""check_results loses its (agent, check, observed_at) index: no query reads results that way,
and keeping it up was 40% of SQLite's time per stored result

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_check_results_agent_check_time", table_name="check_results")


def downgrade() -> None:
    op.create_index(
        "ix_check_results_agent_check_time",
        "check_results",
        ["agent_id", "check_id", "observed_at"],
    )
