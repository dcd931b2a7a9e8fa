"""tickets: priority, tier, SLA deadlines and when each was missed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="3")
        )
        batch.add_column(sa.Column("tier", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolve_by", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("response_breached_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("resolution_breached_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("tickets") as batch:
        # The defaults only filled existing rows; new rows get their values from triage.
        batch.alter_column("priority", server_default=None)
        batch.alter_column("tier", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("resolution_breached_at")
        batch.drop_column("response_breached_at")
        batch.drop_column("resolve_by")
        batch.drop_column("respond_by")
        batch.drop_column("tier")
        batch.drop_column("priority")
