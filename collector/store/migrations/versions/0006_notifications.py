"""notifications: the webhook outbox and its deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(36), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("dispatched_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_outbox"),
        sa.UniqueConstraint("key", name="uq_notification_outbox_key"),
    )
    op.create_index(
        "ix_notification_outbox_dispatched_at", "notification_outbox", ["dispatched_at"]
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("outbox_id", BIG_ID, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        sa.Column("gave_up_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["notification_outbox.id"],
            name="fk_notification_deliveries_outbox_id_notification_outbox",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("outbox_id", "endpoint", name="uq_notification_deliveries_endpoint"),
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["delivered_at", "gave_up_at", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_table("notification_outbox")
