"""SQLAlchemy 2 models: agents, tokens, results and states, tickets, events, windows, outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from remdiag.vocabulary import Priority, TicketState, Tier

# Deterministic constraint names, so Alembic migrations name the same things on every engine.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite's INTEGER PRIMARY KEY autoincrements only as INTEGER, PostgreSQL wants BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Ticket states that are no longer open; the partial unique index below spells them out.
CLOSED_STATES = (int(TicketState.RESOLVED), int(TicketState.CLOSED))
OPEN_TICKET_CLAUSE = f"state NOT IN {CLOSED_STATES}"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime}


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    machine_id: Mapped[str] = mapped_column(String(128), unique=True)
    """One agent per machine: enrolling again rotates the credential, never duplicates."""
    os: Mapped[str] = mapped_column(String(64), default="")
    os_version: Mapped[str] = mapped_column(String(255), default="")
    architecture: Mapped[str] = mapped_column(String(32), default="")
    agent_version: Mapped[str] = mapped_column(String(32), default="")
    credential_hash: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime | None] = mapped_column()
    connected: Mapped[bool] = mapped_column(default=False)
    connection_id: Mapped[str | None] = mapped_column(String(32))
    """The stream currently holding the agent, if any."""
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    """Highest upstream sequence stored; everything at or below it is acked."""
    spool_dropped: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Results the agent's spool dropped when full, the highest count it has reported."""
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the client certificate issued at the latest enrollment (TLS only): an
    older certificate of the same agent is refused."""
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)
    """Set by `remdiag agents revoke`: the agent may neither connect nor enroll again."""
    policy_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """The version of the effective policy this machine should run (0: none pushed yet)."""
    running_policy_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """The version the agent last reported running (hello, heartbeats)."""
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    """Admin-given labels (`vip`, `server`, `finance`): they set a ticket's impact and scope
    maintenance windows."""


class AgentInventory(Base):
    """A machine's latest inventory, in a table of its own: hundreds of packages that only
    inventory messages touch. Inline in `agents`, every heartbeat's and every batch's UPDATE of
    the agent's row had to read them back (SQLite rewrites whole rows) and every scan of
    `agents` walked them."""

    __tablename__ = "agent_inventories"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    """Deferred: read only when merging a diff."""
    received_at: Mapped[datetime] = mapped_column()
    """When the agent last sent it, or confirmed it unchanged."""
    digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the full inventory stored (its facts, serialized deterministically); None
    after a diff. The same full inventory again is acknowledged without decoding it."""


class EnrollmentToken(Base):
    """A secret an admin hands out to enroll agents; only its SHA-256 is stored."""

    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    uses: Mapped[int] = mapped_column(Integer)
    """How many enrollments the token allowed when created."""
    uses_left: Mapped[int] = mapped_column(Integer)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class CheckResult(Base):
    __tablename__ = "check_results"
    __table_args__ = (
        # Also what finds a machine's results (its leading column). No (agent, check, time)
        # index: nothing reads results that way, and keeping one up was 40% of SQLite's time
        # per stored result (migration 0013).
        UniqueConstraint("agent_id", "sequence", "position", name="uq_check_results_delivery"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(SmallInteger)
    """Index of the result within its batch: (agent, sequence, position) is stored once."""
    check_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    summary: Mapped[str] = mapped_column(Text)
    values: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    remediation: Mapped[str] = mapped_column(Text, default="")
    observed_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()


class CheckState(Base):
    """Where the ticket rules stand for one check on one machine."""

    __tablename__ = "check_states"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    check_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger)
    summary: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column()
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_passes: Mapped[int] = mapped_column(Integer, default=0)
    open_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    last_failure_id: Mapped[int | None] = mapped_column(BigInteger)
    """check_results.id of the latest failing result: a ticket's evidence."""
    changes: Mapped[list[float]] = mapped_column(JSON, default=list, server_default="[]")
    """When the check last flipped between passing and failing (epoch seconds, newest last,
    bounded): what flap detection counts."""
    last_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    """The latest ticket of this check, open or not: reopened when it fails again soon."""


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # Deduplication lives in the database: one open ticket per machine and check.
        Index(
            "uq_tickets_open_per_check",
            "agent_id",
            "check_id",
            unique=True,
            sqlite_where=text(OPEN_TICKET_CLAUSE),
            postgresql_where=text(OPEN_TICKET_CLAUSE),
        ),
        Index("ix_tickets_state_opened", "state", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    check_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[int] = mapped_column(SmallInteger)
    severity: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(SmallInteger, default=int(Priority.P3))
    tier: Mapped[int] = mapped_column(SmallInteger, default=int(Tier.L1))
    respond_by: Mapped[datetime | None] = mapped_column()
    resolve_by: Mapped[datetime | None] = mapped_column()
    response_breached_at: Mapped[datetime | None] = mapped_column()
    resolution_breached_at: Mapped[datetime | None] = mapped_column()
    evidence_result_id: Mapped[int | None] = mapped_column(BigInteger)
    assignee: Mapped[str | None] = mapped_column(String(128), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    """First response: when a person first took, assigned or worked the ticket."""
    closed_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    """`system` when the machine recovered by itself, else the person who resolved it."""
    flapping: Mapped[bool] = mapped_column(default=False, server_default=false())
    """The check keeps flipping: the ticket stays open until it is stable."""
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sla_paused_at: Mapped[datetime | None] = mapped_column()
    """Set while a maintenance window covers the machine: the SLA clocks stand still."""


class TicketEvent(Base):
    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


class MaintenanceWindow(Base):
    """A time when nothing opens tickets on the machines it covers, and SLA clocks pause.

    One-off (`starts_at` + duration) or recurring (`cron` + duration, in `timezone`); it covers
    the machines listed, the machines with any of the tags, or every machine.
    """

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime | None] = mapped_column()
    cron: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    all_machines: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    agent_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))


class NotificationOutbox(Base):
    """A ticket event to notify, written in the transaction that records the event."""

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(36), unique=True)
    """The Idempotency-Key receivers see, the same on every attempt."""
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    """No foreign key: what was notified stays as it was sent."""
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The event and the ticket as they stood when the event was recorded."""
    created_at: Mapped[datetime] = mapped_column()
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the deliveries to the configured webhooks were made out."""


class NotificationDelivery(Base):
    """One outbox row on its way to one webhook: attempts so far and what is next."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "endpoint", name="uq_notification_deliveries_endpoint"),
        Index("ix_notification_deliveries_due", "delivered_at", "gave_up_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("notification_outbox.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(2048))
    """The webhook's URL."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    gave_up_at: Mapped[datetime | None] = mapped_column()
    """Set after max_attempts failures: no more tries."""
    last_error: Mapped[str] = mapped_column(Text, default="")


class Diagnostic(Base):
    """A named action a technician (or auto-triage) asked one machine to run, and its outcome."""

    __tablename__ = "diagnostics"
    __table_args__ = (Index("ix_diagnostics_agent_state", "agent_id", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """A UUID: the request id the agent sees and remembers."""
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[int] = mapped_column(SmallInteger)
    requested_by: Mapped[str] = mapped_column(String(128))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    requested_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    progress: Mapped[str] = mapped_column(Text, default="")
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text, default="")
    truncated: Mapped[bool] = mapped_column(default=False)
    task_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("task_runs.id", ondelete="SET NULL"), index=True
    )
    """The maintenance task run this step belongs to, if any."""


class ConsoleToken(Base):
    """A technician's or admin's console token, named after its holder; only its SHA-256 is
    stored. A name belongs to one live (not revoked) token at a time."""

    __tablename__ = "console_tokens"
    __table_args__ = (
        Index(
            "uq_console_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    """Who holds it: the actor of what the token does (ticket events, the audit log)."""
    role: Mapped[str] = mapped_column(String(16))
    """"technician" or "admin" (collector.console_tokens.Role)."""
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    """None: until revoked."""
    revoked_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """One console action or refused console call: who, what, on what, when, how it went."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    """The token's name, or "anonymous" when the call had no valid token."""
    role: Mapped[str] = mapped_column(String(16))
    """The token's role; empty for an anonymous call."""
    action: Mapped[str] = mapped_column(String(64))
    """The ConsoleService method, e.g. "UpdateTicket"."""
    target: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(32))
    """"ok" or the gRPC status code name."""
    detail: Mapped[str] = mapped_column(String(500))


class Policy(Base):
    """A named set of checks, thresholds and schedules for a target (see collector/policies.py)."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The validated document, as applied."""
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column()
    updated_by: Mapped[str] = mapped_column(String(128))


class MaintenanceTask(Base):
    """Named diagnostic actions run on a schedule across a target, spread over a window."""

    __tablename__ = "maintenance_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    window_minutes: Mapped[int] = mapped_column(Integer)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None] = mapped_column()


class TaskRun(Base):
    """One scheduled run of a task on one machine, and how it ended."""

    __tablename__ = "task_runs"
    __table_args__ = (
        UniqueConstraint("task_id", "scheduled_for", "agent_id", name="uq_task_runs_once"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("maintenance_tasks.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column()
    """The cron occurrence this run belongs to."""
    start_at: Mapped[datetime] = mapped_column()
    """Its jittered start within the window."""
    window_ends_at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16))
    """pending, done, failed or missed."""
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))


class RecurringTicket(Base):
    """A preventive ticket that opens on a schedule for each machine of its target."""

    __tablename__ = "recurring_tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    cron: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    every_days: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    category: Mapped[int] = mapped_column(SmallInteger)
    severity: Mapped[int] = mapped_column(SmallInteger)
    next_open_at: Mapped[datetime | None] = mapped_column(index=True)
    last_opened_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))


class CheckRollup(Base):
    """One hour of one check on one machine, kept after its raw results are pruned
    (collector/retention.py): counts by status, first and last observed, numeric values."""

    __tablename__ = "check_rollups"
    __table_args__ = (
        UniqueConstraint("agent_id", "check_id", "hour", name="uq_check_rollups_hour"),
        Index("ix_check_rollups_hour", "hour"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    check_id: Mapped[str] = mapped_column(String(64))
    hour: Mapped[datetime] = mapped_column()
    """The start of the hour (UTC) the results were observed in."""
    ok_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    critical_count: Mapped[int] = mapped_column(Integer, default=0)
    unknown_count: Mapped[int] = mapped_column(Integer, default=0)
    first_observed_at: Mapped[datetime] = mapped_column()
    last_observed_at: Mapped[datetime] = mapped_column()
    last_status: Mapped[int] = mapped_column(SmallInteger)
    """The status of the last result observed in the hour."""
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    """By value name: {"unit", "min", "max", "sum", "count"}; the average is sum / count."""


# Pruning keeps results that tickets and check states point at: these find them.
Index("ix_tickets_evidence_result_id", Ticket.evidence_result_id)
Index("ix_check_states_last_failure_id", CheckState.last_failure_id)
