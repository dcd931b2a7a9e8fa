"""The service desk: the queue, one ticket with timeline and evidence, technicians' actions, SLA."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, case, null, or_, select
from sqlalchemy.orm import Session

from collector import windows
from collector.diagnostics import DiagnosticView, list_diagnostics
from collector.escalation import Deadline, TicketClock, missed
from collector.lifecycle import AWAITING_RESPONSE, Action, ActionError, TicketFacts, plan
from collector.store.models import (
    CLOSED_STATES,
    Agent,
    CheckResult,
    CheckState,
    Ticket,
    TicketEvent,
)
from collector.timeline import record
from collector.triage import DeskSettings, impact_of, place
from remdiag.vocabulary import Category, Priority, Severity, TicketState, Tier

DEFAULT_PAGE = 200
MAX_PAGE = 1000


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    hostname: str


@dataclass(frozen=True)
class TicketDetail:
    row: TicketRow
    events: list[TicketEvent]
    evidence: CheckResult | None
    diagnostics: list[DiagnosticView] = field(default_factory=list)
    """Run for the ticket (auto-triage, remediation, technicians), newest first."""


class Sort(StrEnum):
    URGENCY = "urgency"
    """The nearest SLA deadline first (missed ones first of all), then priority; finished
    tickets last, by priority then newest first."""
    NEWEST = "newest"


@dataclass(frozen=True)
class TicketFilter:
    """Each collection keeps tickets matching any of its values; empty keeps all."""

    open_only: bool = False
    agent_id: str = ""
    states: frozenset[TicketState] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    tiers: frozenset[Tier] = frozenset()
    categories: frozenset[Category] = frozenset()
    assignee: str = ""
    unassigned_only: bool = False
    breached_only: bool = False
    sort: Sort = Sort.URGENCY
    limit: int = 0
    """0 means the default page; capped at MAX_PAGE."""


def next_deadline() -> ColumnElement[datetime | None]:
    """The deadline an open ticket races next; NULL once it is resolved or closed."""
    awaiting = Ticket.state.in_([int(s) for s in AWAITING_RESPONSE])
    return case(
        (Ticket.state.in_(CLOSED_STATES), null()),
        (and_(awaiting, Ticket.respond_by < Ticket.resolve_by), Ticket.respond_by),
        else_=Ticket.resolve_by,
    )


def list_tickets(session: Session, where: TicketFilter = TicketFilter()) -> list[TicketRow]:
    query = select(Ticket, Agent.hostname).join(Agent, Agent.id == Ticket.agent_id)
    if where.open_only:
        query = query.where(Ticket.state.not_in(CLOSED_STATES))
    if where.agent_id:
        query = query.where(Ticket.agent_id == where.agent_id)
    for column, values in (
        (Ticket.state, where.states),
        (Ticket.priority, where.priorities),
        (Ticket.tier, where.tiers),
        (Ticket.category, where.categories),
    ):
        if values:
            query = query.where(column.in_(sorted(int(v) for v in values)))
    if where.assignee:
        query = query.where(Ticket.assignee == where.assignee)
    if where.unassigned_only:
        query = query.where(Ticket.assignee.is_(None))
    if where.breached_only:
        query = query.where(
            or_(
                Ticket.response_breached_at.is_not(None), Ticket.resolution_breached_at.is_not(None)
            )
        )
    if where.sort is Sort.URGENCY:
        query = query.order_by(next_deadline().asc().nulls_last(), Ticket.priority)
    query = query.order_by(Ticket.opened_at.desc(), Ticket.id.desc())
    query = query.limit(min(where.limit or DEFAULT_PAGE, MAX_PAGE))
    return [TicketRow(ticket, hostname) for ticket, hostname in session.execute(query)]


def get_ticket(session: Session, ticket_id: int) -> TicketDetail | None:
    found = session.execute(
        select(Ticket, Agent.hostname)
        .join(Agent, Agent.id == Ticket.agent_id)
        .where(Ticket.id == ticket_id)
    ).first()
    if found is None:
        return None
    ticket, hostname = found
    events = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    )
    evidence = (
        session.get(CheckResult, ticket.evidence_result_id) if ticket.evidence_result_id else None
    )
    ran = list_diagnostics(session, ticket_id=ticket_id)
    return TicketDetail(TicketRow(ticket, hostname), list(events), evidence, ran)


def update_ticket(
    session: Session,
    ticket_id: int,
    actor: str,
    action: Action,
    now: datetime,
    settings: DeskSettings,
) -> TicketDetail | None:
    """Carry out a technician's action; None for an unknown ticket, ActionError when refused."""
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        return None
    facts = TicketFacts(
        id=ticket.id,
        state=TicketState(ticket.state),
        tier=Tier(ticket.tier),
        assignee=ticket.assignee,
        acknowledged=ticket.acknowledged_at is not None,
    )
    change = plan(facts, action, actor)
    if change.state is TicketState.REOPENED:
        _reopen(session, ticket, now, settings)
    elif change.state is TicketState.RESOLVED and facts.state.is_open:
        ticket.resolved_at = now
        ticket.resolved_by = actor
    if change.state is TicketState.CLOSED and facts.state is not TicketState.CLOSED:
        ticket.closed_at = now  # not moved by a comment on a closed ticket
    if not change.state.is_open:
        ticket.sla_paused_at = None
        ticket.flapping = False
    if change.acknowledge:
        ticket.acknowledged_at = now
    ticket.state = int(change.state)
    ticket.assignee = change.assignee
    ticket.tier = int(change.tier)
    record(session, ticket, now, change.kind, change.message, actor=actor)
    session.flush()
    return get_ticket(session, ticket_id)


def place_ticket(ticket: Ticket, agent: Agent, now: datetime, settings: DeskSettings) -> str:
    """Priority (severity x the machine's impact) and SLA deadlines from `now`; the starting
    tier only for a new ticket (a reopened one keeps the tier it may have been escalated to).
    Returns the words the opening event ends with, e.g. "P2 (impact medium), L1"."""
    impact = impact_of(agent.tags or [], settings)
    placed = place(
        ticket.check_id,
        Category(ticket.category),
        Severity(ticket.severity),
        now,
        settings,
        impact,
    )
    if ticket.tier is None:
        ticket.tier = int(placed.tier)
    ticket.priority = int(placed.priority)
    ticket.respond_by = placed.respond_by
    ticket.resolve_by = placed.resolve_by
    ticket.updated_at = now
    return f"{placed.priority.name} (impact {impact.value}), {Tier(ticket.tier).name}"


def new_ticket(
    agent: Agent,
    check_id: str,
    category: Category,
    severity: Severity,
    title: str,
    now: datetime,
    settings: DeskSettings,
) -> tuple[Ticket, str]:
    """A NEW ticket placed by triage (not yet added to the session), and its placement words."""
    ticket = Ticket(
        agent_id=agent.id,
        check_id=check_id,
        category=int(category),
        severity=int(severity),
        state=int(TicketState.NEW),
        title=title,
        opened_at=now,
        failure_count=0,
    )
    return ticket, place_ticket(ticket, agent, now, settings)


def mark_reopened(ticket: Ticket) -> None:
    """Back to open, as the rules or a person reopen it; the caller sets fresh deadlines."""
    ticket.state = int(TicketState.REOPENED)
    ticket.reopen_count += 1
    ticket.resolved_at = ticket.closed_at = None
    ticket.resolved_by = None
    ticket.response_breached_at = ticket.resolution_breached_at = None


def _reopen(session: Session, ticket: Ticket, now: datetime, settings: DeskSettings) -> None:
    """Fresh SLA deadlines at the ticket's priority; the check's rules follow it again."""
    other = session.scalar(
        select(Ticket.id).where(
            Ticket.agent_id == ticket.agent_id,
            Ticket.check_id == ticket.check_id,
            Ticket.state.not_in(CLOSED_STATES),
            Ticket.id != ticket.id,
        )
    )
    if other is not None:
        raise ActionError(
            f"ticket {other} is already open for {ticket.check_id} on this machine: work that one"
        )
    sla = settings.sla[Priority(ticket.priority).name]
    ticket.respond_by = now + timedelta(minutes=sla.respond_minutes)
    ticket.resolve_by = now + timedelta(minutes=sla.resolve_minutes)
    mark_reopened(ticket)
    state = session.get(CheckState, (ticket.agent_id, ticket.check_id))
    if state is not None:
        state.open_ticket_id = state.last_ticket_id = ticket.id
        # Passes counted before the reopen must not resolve it again at the next one.
        state.consecutive_passes = 0


def sweep(session: Session, now: datetime) -> list[int]:
    """Mark open tickets that missed a deadline, raise their tier; the ids escalated."""
    due = session.scalars(
        select(Ticket)
        .where(
            Ticket.state.not_in(CLOSED_STATES),
            Ticket.sla_paused_at.is_(None),
            or_(
                and_(Ticket.respond_by < now, Ticket.response_breached_at.is_(None)),
                and_(Ticket.resolve_by < now, Ticket.resolution_breached_at.is_(None)),
            ),
        )
        .order_by(Ticket.id)
        .with_for_update(skip_locked=True)
    )
    escalated: list[int] = []
    for ticket in due:
        breaches = missed(_clock(ticket), now)
        for breach in breaches:
            if breach.deadline is Deadline.RESPONSE:
                ticket.response_breached_at = now
            else:
                ticket.resolution_breached_at = now
            old = Tier(ticket.tier)
            ticket.tier = int(breach.new_tier)
            record(
                session,
                ticket,
                now,
                "breached",
                f"missed its {breach.deadline} deadline "
                f"({breach.due:%Y-%m-%d %H:%M} UTC); {old.name} -> {breach.new_tier.name}",
            )
        if breaches:
            ticket.updated_at = now
            escalated.append(ticket.id)
    return escalated


def pause_clocks(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Pause the SLA clocks of open tickets on machines a maintenance window covers now, and
    resume the others, moving their deadlines on by the time paused; (paused, resumed) ids.

    Runs with the sweep, so a pause starts and ends within `sweep_seconds` of the window's.
    """
    covered = windows.agents_in_maintenance(session, now)
    query = select(Ticket).where(Ticket.state.not_in(CLOSED_STATES))
    if not covered:
        query = query.where(Ticket.sla_paused_at.is_not(None))
    paused: list[int] = []
    resumed: list[int] = []
    for ticket in session.scalars(query.order_by(Ticket.id).with_for_update(skip_locked=True)):
        window = covered.get(ticket.agent_id)
        if window is not None and ticket.sla_paused_at is None:
            ticket.sla_paused_at = now
            record(
                session,
                ticket,
                now,
                "sla_paused",
                f"maintenance window {window.name!r} covers the machine: SLA clocks paused",
            )
            paused.append(ticket.id)
        elif window is None and ticket.sla_paused_at is not None:
            held = now - ticket.sla_paused_at
            ticket.sla_paused_at = None
            ticket.respond_by = ticket.respond_by + held if ticket.respond_by else None
            ticket.resolve_by = ticket.resolve_by + held if ticket.resolve_by else None
            due = f"{ticket.resolve_by:%Y-%m-%d %H:%M} UTC" if ticket.resolve_by else "none"
            record(
                session,
                ticket,
                now,
                "sla_resumed",
                f"maintenance over: SLA clocks resume after {_minutes(held)} paused; "
                f"resolve by {due}",
            )
            resumed.append(ticket.id)
    return paused, resumed


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"


def _clock(ticket: Ticket) -> TicketClock:
    return TicketClock(
        state=TicketState(ticket.state),
        tier=Tier(ticket.tier),
        respond_by=ticket.respond_by,
        resolve_by=ticket.resolve_by,
        response_breached=ticket.response_breached_at is not None,
        resolution_breached=ticket.resolution_breached_at is not None,
    )
