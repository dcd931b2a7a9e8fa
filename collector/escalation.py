"""SLA escalation rules, pure: which deadlines an open ticket has missed, and the tier it goes to.

collector/jobs.py runs the sweep on a schedule; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from remdiag.vocabulary import TicketState, Tier


class Deadline(StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class TicketClock:
    """What the rules need of a ticket."""

    state: TicketState
    tier: Tier
    respond_by: datetime | None
    resolve_by: datetime | None
    response_breached: bool
    resolution_breached: bool


@dataclass(frozen=True)
class Breach:
    deadline: Deadline
    due: datetime
    new_tier: Tier
    """One tier up per missed deadline, at most L4."""


def missed(ticket: TicketClock, now: datetime) -> list[Breach]:
    """Deadlines newly missed at `now`, first response before resolution.

    First response only counts while nobody has acknowledged the ticket (it is NEW or
    REOPENED); a closed or resolved ticket misses nothing.
    """
    if not ticket.state.is_open:
        return []
    breaches: list[Breach] = []
    tier = ticket.tier
    awaiting_response = ticket.state in (TicketState.NEW, TicketState.REOPENED)
    checks = (
        (Deadline.RESPONSE, ticket.respond_by, ticket.response_breached, awaiting_response),
        (Deadline.RESOLUTION, ticket.resolve_by, ticket.resolution_breached, True),
    )
    for deadline, due, already, applies in checks:
        if applies and due is not None and not already and now > due:
            tier = Tier(min(int(tier) + 1, int(Tier.L4)))
            breaches.append(Breach(deadline, due, tier))
    return breaches
