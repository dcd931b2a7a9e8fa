"""The service desk's view of tickets: the queue, and one ticket with timeline and evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from collector.escalation import Deadline, TicketClock, missed
from collector.store.models import CLOSED_STATES, Agent, CheckResult, Ticket, TicketEvent
from collector.timeline import record
from remdiag.vocabulary import TicketState, Tier

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


def list_tickets(
    session: Session, *, open_only: bool = False, agent_id: str = "", limit: int = 0
) -> list[TicketRow]:
    """Newest first; `limit` 0 means the default page, and is capped."""
    query = select(Ticket, Agent.hostname).join(Agent, Agent.id == Ticket.agent_id)
    if open_only:
        query = query.where(Ticket.state.not_in(CLOSED_STATES))
    if agent_id:
        query = query.where(Ticket.agent_id == agent_id)
    query = query.order_by(Ticket.opened_at.desc(), Ticket.id.desc())
    query = query.limit(min(limit or DEFAULT_PAGE, MAX_PAGE))
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
    return TicketDetail(TicketRow(ticket, hostname), list(events), evidence)


def sweep(session: Session, now: datetime) -> list[int]:
    """Mark open tickets that missed a deadline, raise their tier; the ids escalated."""
    due = session.scalars(
        select(Ticket)
        .where(
            Ticket.state.not_in(CLOSED_STATES),
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


def _clock(ticket: Ticket) -> TicketClock:
    return TicketClock(
        state=TicketState(ticket.state),
        tier=Tier(ticket.tier),
        respond_by=ticket.respond_by,
        resolve_by=ticket.resolve_by,
        response_breached=ticket.response_breached_at is not None,
        resolution_breached=ticket.resolution_breached_at is not None,
    )
