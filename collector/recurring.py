"""Recurring preventive tickets: tickets that open on a schedule for work no sensor sees.

"Every 90 days, an L1 ticket 'check the backup restores' for each machine tagged finance." A
recurring ticket has a name, the title its tickets get and a description (their first event
says "recurring preventive ticket NAME: DESCRIPTION"), a schedule (a 5-field cron in an IANA
timezone, read as for maintenance tasks, or every N days: the first then opens at once), a target
(collector/tasks.Target), a category and a severity. Its tickets have the check id
`preventive:NAME` and are placed like any other (priority from severity and the machine's
impact, starting tier, SLA deadlines: collector/triage.py). A machine whose previous one is still
open gets no second one. Tickets open inside maintenance windows too (the work is planned); their
SLA clocks pause there as any ticket's do.

The rules (validation, `next_open`) are pure; the store functions below them read and write rows;
`tick` is the periodic job (collector/jobs.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector import bus, tasks
from collector.desk import new_ticket
from collector.store.models import CLOSED_STATES, Agent, RecurringTicket, Ticket
from collector.store.runner import Store
from collector.tasks import Target, TaskError
from collector.timeline import record
from collector.triage import DeskSettings
from remdiag.vocabulary import Category, Severity

log = logging.getLogger(__name__)

CHECK_PREFIX = "preventive:"
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_EVERY_DAYS = 3650
TICK_SECONDS = 30.0
"""How often the job looks for recurring tickets that are due (collector/jobs.py)."""


@dataclass(frozen=True)
class RecurringSpec:
    """What a recurring ticket is, without its id and bookkeeping. Build it with `recurring()`
    (validated) or `from_row()` (trusted)."""

    name: str
    title: str
    description: str
    cron: str | None
    timezone: str
    every_days: int | None
    target: Target
    category: Category
    severity: Severity

    @classmethod
    def from_row(cls, row: RecurringTicket) -> RecurringSpec:
        return cls(
            name=row.name,
            title=row.title,
            description=row.description,
            cron=row.cron,
            timezone=row.timezone,
            every_days=row.every_days,
            target=Target.from_json(row.target),
            category=Category(row.category),
            severity=Severity(row.severity),
        )

    @property
    def check_id(self) -> str:
        return CHECK_PREFIX + self.name


def recurring(
    *,
    name: str,
    title: str,
    description: str = "",
    cron: str | None = None,
    timezone: str = "UTC",
    every_days: int | None = None,
    target: Target,
    category: int = Category.SOFTWARE,
    severity: int = Severity.WARNING,
) -> RecurringSpec:
    """A validated RecurringSpec; TaskError says what is wrong. Empty or 0 counts as absent."""
    name = tasks.check_name(name)
    title = title.strip()
    if not 1 <= len(title) <= MAX_TITLE_CHARS or not title.isprintable():
        raise TaskError(f"title: 1 to {MAX_TITLE_CHARS} printable characters")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise TaskError(f"description: at most {MAX_DESCRIPTION_CHARS} characters")
    cron = (cron or "").strip() or None
    timezone = timezone or "UTC"
    if (cron is None) == (not every_days):
        raise TaskError("schedule: give exactly one of a cron (with a timezone) or every N days")
    if cron is not None:
        cron = tasks.check_schedule(cron, timezone)
    elif every_days is not None and not 1 <= every_days <= MAX_EVERY_DAYS:
        raise TaskError(f"every_days: 1 to {MAX_EVERY_DAYS}, got {every_days}")
    try:
        category_ = Category(category)
    except ValueError:
        raise TaskError("category: hardware, software, network or security") from None
    try:
        severity_ = Severity(severity)
    except ValueError:
        raise TaskError("severity: warning or critical") from None
    return RecurringSpec(
        name=name,
        title=title,
        description=description,
        cron=cron,
        timezone=timezone,
        every_days=every_days if cron is None else None,
        target=target,
        category=category_,
        severity=severity_,
    )


def next_open(spec: RecurringSpec, previous: datetime | None, now: datetime) -> datetime | None:
    """When its tickets open next, strictly after `now`, or at once (`now`) for an every-N-days
    schedule that has never opened. `previous`: the last due time (keeps the cadence: a
    collector that was down opens once on its return, then keeps the old rhythm)."""
    if spec.cron is not None:
        return tasks.next_occurrence(spec.cron, spec.timezone, now)
    assert spec.every_days is not None
    if previous is None:
        return now
    period = timedelta(days=spec.every_days)
    missed = max(0, (now - previous) // period)
    return previous + period * (missed + 1)


# --- Store --------------------------------------------------------------------------------------


def create(session: Session, spec: RecurringSpec, actor: str, now: datetime) -> RecurringTicket:
    """Store a validated recurring ticket, its first tickets due at `next_open`."""
    actor = tasks.check_actor(actor)
    tasks.check_machines(session, spec.target)
    row = RecurringTicket(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        cron=spec.cron,
        timezone=spec.timezone,
        every_days=spec.every_days,
        target=spec.target.as_json(),
        category=int(spec.category),
        severity=int(spec.severity),
        next_open_at=next_open(spec, None, now),
        created_at=now,
        created_by=actor,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise TaskError(f"a recurring ticket named {spec.name!r} already exists") from None
    return row


def list_recurring(session: Session) -> list[RecurringTicket]:
    return list(session.scalars(select(RecurringTicket).order_by(RecurringTicket.id)))


def delete(session: Session, recurring_id: int) -> bool:
    """False when there is no such recurring ticket; the tickets it opened stay."""
    row = session.get(RecurringTicket, recurring_id)
    if row is None:
        return False
    session.delete(row)
    return True


def open_due(session: Session, now: datetime, desk: DeskSettings) -> list[int]:
    """Open the tickets of every recurring ticket that is due, one per machine of its target
    that has none of it still open, then move it to its next time. The new tickets' ids."""
    due = session.scalars(
        select(RecurringTicket)
        .where(RecurringTicket.next_open_at <= now)
        .order_by(RecurringTicket.id)
        .with_for_update(skip_locked=True)
    ).all()
    opened: list[int] = []
    for row in due:
        spec = RecurringSpec.from_row(row)
        opened += _open_all(session, spec, now, desk)
        row.last_opened_at = now
        try:
            row.next_open_at = next_open(spec, row.next_open_at, now)
        except ValueError as exc:  # a row written by hand, or a timezone since removed
            log.warning("recurring ticket %r stops: %s", spec.name, exc)
            row.next_open_at = None
    return opened


def _open_all(
    session: Session, spec: RecurringSpec, now: datetime, desk: DeskSettings
) -> list[int]:
    still_open = set(
        session.scalars(
            select(Ticket.agent_id).where(
                Ticket.check_id == spec.check_id, Ticket.state.not_in(CLOSED_STATES)
            )
        )
    )
    agents = session.scalars(select(Agent).where(Agent.revoked_at.is_(None)).order_by(Agent.id))
    why = f"recurring preventive ticket {spec.name}: {spec.description or spec.title}"
    opened: list[int] = []
    for agent in agents:
        if agent.id in still_open or not spec.target.covers(agent.id, agent.tags or ()):
            continue
        ticket, placement = new_ticket(
            agent, spec.check_id, spec.category, spec.severity, spec.title, now, desk
        )
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:  # opened meanwhile by another collector: one open at a time
            continue
        record(session, ticket, now, "opened", f"{why}; {placement}")
        opened.append(ticket.id)
    return opened


async def tick(store: Store, desk: DeskSettings, now: datetime | None = None) -> list[int]:
    """One pass of the job at `now` (the clock by default): the tickets it opened."""
    at = now or datetime.now(UTC)
    # With several collectors, one opens them in a round (collector/bus.py).
    opened = await store.run(
        lambda s: open_due(s, at, desk) if bus.run_once(s, "recurring-tickets") else []
    )
    if opened:
        log.info("recurring preventive tickets opened: %s", ", ".join(map(str, opened)))
    return opened
