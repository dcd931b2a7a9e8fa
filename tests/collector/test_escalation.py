"""collector/escalation.py on recorded tickets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from collector.escalation import Deadline, TicketClock, missed
from remdiag.vocabulary import TicketState, Tier

OPENED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TICKET = TicketClock(
    state=TicketState.NEW,
    tier=Tier.L1,
    respond_by=OPENED + timedelta(hours=1),
    resolve_by=OPENED + timedelta(hours=8),
    response_breached=False,
    resolution_breached=False,
)


def test_nothing_before_a_deadline() -> None:
    assert missed(TICKET, OPENED + timedelta(minutes=59)) == []


def test_a_missed_response_raises_one_tier() -> None:
    (breach,) = missed(TICKET, OPENED + timedelta(hours=2))
    assert breach.deadline is Deadline.RESPONSE and breach.new_tier is Tier.L2


def test_both_missed_raise_two_tiers_once_each() -> None:
    late = OPENED + timedelta(hours=9)
    first, second = missed(TICKET, late)
    assert (first.deadline, first.new_tier) == (Deadline.RESPONSE, Tier.L2)
    assert (second.deadline, second.new_tier) == (Deadline.RESOLUTION, Tier.L3)
    marked = replace(TICKET, tier=Tier.L3, response_breached=True, resolution_breached=True)
    assert missed(marked, late) == []


def test_the_tier_stops_at_l4() -> None:
    (breach,) = missed(replace(TICKET, tier=Tier.L4), OPENED + timedelta(hours=2))
    assert breach.new_tier is Tier.L4


def test_acknowledged_tickets_only_miss_resolution() -> None:
    acknowledged = replace(TICKET, state=TicketState.ACKNOWLEDGED)
    assert missed(acknowledged, OPENED + timedelta(hours=2)) == []
    (breach,) = missed(acknowledged, OPENED + timedelta(hours=9))
    assert breach.deadline is Deadline.RESOLUTION


def test_resolved_tickets_miss_nothing() -> None:
    resolved = replace(TICKET, state=TicketState.RESOLVED)
    assert missed(resolved, OPENED + timedelta(days=30)) == []
