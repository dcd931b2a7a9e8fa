"""The service desk's view of tickets: the queue, and one ticket with timeline and evidence."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import CLOSED_STATES, Agent, CheckResult, Ticket, TicketEvent

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
