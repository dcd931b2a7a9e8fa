"""Every change to a ticket is an event with its actor, recorded here and nowhere else."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.notify import enqueue
from collector.store.models import Ticket, TicketEvent

SYSTEM_ACTOR = "system"


def record(
    session: Session,
    ticket: Ticket,
    now: datetime,
    kind: str,
    message: str,
    actor: str = SYSTEM_ACTOR,
) -> TicketEvent:
    """Add an event to `ticket`'s timeline in the caller's transaction.

    Call it after changing the ticket: a notified kind puts the event, with the ticket as it now
    stands, in the webhook outbox in the same transaction.
    """
    ticket.updated_at = now
    event = TicketEvent(ticket_id=ticket.id, at=now, actor=actor, kind=kind, message=message)
    session.add(event)
    enqueue(session, ticket, now, kind, message, actor)
    return event
