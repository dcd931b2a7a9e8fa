"""policies, maintenance tasks and their runs, recurring tickets; machines' policy versions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("policy_version", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("running_policy_version", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "policies",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.UniqueConstraint("name", name="uq_policies_name"),
    )
    op.create_table(
        "maintenance_tasks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("next_run_at", UTC_TIME, nullable=True),
        sa.Column("last_run_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_tasks"),
        sa.UniqueConstraint("name", name="uq_maintenance_tasks_name"),
    )
    op.create_index("ix_maintenance_tasks_next_run_at", "maintenance_tasks", ["next_run_at"])
    op.create_table(
        "task_runs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("task_id", BIG_ID, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("scheduled_for", UTC_TIME, nullable=False),
        sa.Column("start_at", UTC_TIME, nullable=False),
        sa.Column("window_ends_at", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["maintenance_tasks.id"],
            name="fk_task_runs_task_id_maintenance_tasks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_task_runs_agent_id_agents", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_task_runs_ticket_id_tickets",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_task_runs"),
        sa.UniqueConstraint("task_id", "scheduled_for", "agent_id", name="uq_task_runs_once"),
    )
    op.create_index("ix_task_runs_task_id", "task_runs", ["task_id"])
    op.create_table(
        "recurring_tickets",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(128), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=True),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("next_open_at", UTC_TIME, nullable=True),
        sa.Column("last_opened_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recurring_tickets"),
        sa.UniqueConstraint("name", name="uq_recurring_tickets_name"),
    )
    op.create_index("ix_recurring_tickets_next_open_at", "recurring_tickets", ["next_open_at"])
    with op.batch_alter_table("diagnostics") as batch:
        batch.add_column(sa.Column("task_run_id", BIG_ID, nullable=True))
        batch.create_foreign_key(
            "fk_diagnostics_task_run_id_task_runs",
            "task_runs",
            ["task_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_diagnostics_task_run_id", ["task_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("diagnostics") as batch:
        batch.drop_index("ix_diagnostics_task_run_id")
        batch.drop_constraint("fk_diagnostics_task_run_id_task_runs", type_="foreignkey")
        batch.drop_column("task_run_id")
    op.drop_table("recurring_tickets")
    op.drop_table("task_runs")
    op.drop_table("maintenance_tasks")
    op.drop_table("policies")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("running_policy_version")
        batch.drop_column("policy_version")
