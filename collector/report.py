"""The support record: what `remdiag report` shows about the tickets opened in a period.

`build` is pure: it turns recorded ticket rows, the period and `now` into a `Report`.
`load` is the only part that reads the store. Every figure is about the tickets *opened* in
the period [since, until), as they stand at `now`:

- opened: tickets opened in the period; by category, check, machine (top 10), priority, tier,
  and per UTC day (every day the period touches, zeros included; the first and last day are
  usually partial).
- resolved: of those, the ones resolved or closed now ("finished", by state). resolution rate =
  resolved / opened (0.0 when nothing opened).
- auto-resolved: finished with `resolved_by == "system"` (the machine recovered);
  resolved by a technician: finished with any other `resolved_by`. A ticket closed without a
  recorded resolution is in neither, so the two can add up to less than `resolved`.
- reopened: tickets reopened at least once. breached: tickets marked breached on either deadline.
- first response = acknowledged_at - opened_at, over tickets a person acknowledged.
  resolution time = (resolved_at or closed_at) - opened_at, over finished tickets.
  Both as count, median and p90, in seconds; a duration below zero (clock skew) counts as 0.
  Percentiles interpolate linearly between the closest ranks: statistics.quantiles with
  method="inclusive" (numpy's default "linear", spreadsheets' PERCENTILE.INC). One value is
  its own median and p90; no values give 0.
- response SLA compliance, over tickets with a respond_by: met when acknowledged_at <=
  respond_by; missed when acknowledged late, or never acknowledged and past respond_by (open
  now, or finished after it). Not counted: finished before the deadline with nobody having
  responded (e.g. auto-resolved early), and open, unacknowledged tickets not yet past it.
- resolution SLA compliance, over tickets with a resolve_by: met when finished at or before
  resolve_by (an auto-resolution counts: the problem was gone in time); missed when finished
  after it, or open and past it; open tickets not yet past it are not counted.
  Compliance = met / (met + missed), 0.0 when nothing is counted.
- Deadlines are the stored ones (already moved on when a maintenance window paused the clock);
  an open ticket whose clock is paused right now is judged at the moment it paused.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import Agent, Ticket
from remdiag.vocabulary import Category, Priority, TicketState, Tier

SYSTEM_ACTOR = "system"
"""`resolved_by` of a ticket the collector resolved because the machine recovered."""
TOP_MACHINES = 10
MAX_PERIOD = timedelta(days=366)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class ReportTicket:
    """What the report needs of one ticket, as recorded."""

    agent_id: str
    hostname: str
    check_id: str
    category: int
    priority: int
    tier: int
    state: int
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolved_by: str | None = None
    respond_by: datetime | None = None
    resolve_by: datetime | None = None
    response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    sla_paused_at: datetime | None = None
    reopen_count: int = 0

    @property
    def finished(self) -> bool:
        return self.state in (TicketState.RESOLVED, TicketState.CLOSED)

    @property
    def finished_at(self) -> datetime | None:
        """When a finished ticket was resolved (or, failing that, closed); None while open."""
        if not self.finished:
            return None
        return self.resolved_at or self.closed_at


@dataclass(frozen=True)
class DurationStats:
    count: int = 0
    median_seconds: float = 0.0
    p90_seconds: float = 0.0


@dataclass(frozen=True)
class Compliance:
    """Tickets that met or missed one kind of deadline; the others were not counted."""

    met: int = 0
    missed: int = 0

    @property
    def rate(self) -> float:
        counted = self.met + self.missed
        return self.met / counted if counted else 0.0


Counts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    opened: int
    resolved: int
    auto_resolved: int
    resolved_by_technician: int
    reopened: int
    breached: int
    by_category: Counts
    by_check: Counts
    by_machine: Counts
    by_priority: Counts
    by_tier: Counts
    per_day: Counts
    first_response: DurationStats
    resolution: DurationStats
    response_sla: Compliance
    resolution_sla: Compliance

    @property
    def resolution_rate(self) -> float:
        return self.resolved / self.opened if self.opened else 0.0


def build(rows: Iterable[ReportTicket], since: datetime, until: datetime, now: datetime) -> Report:
    """The report on the tickets among `rows` opened in [since, until), as they stand at `now`."""
    if since >= until:
        raise ValueError("a report period must start before it ends")
    tickets = [r for r in rows if since <= r.opened_at < until]
    finished = [r for r in tickets if r.finished]
    return Report(
        since=since,
        until=until,
        opened=len(tickets),
        resolved=len(finished),
        auto_resolved=sum(1 for r in finished if r.resolved_by == SYSTEM_ACTOR),
        resolved_by_technician=sum(
            1 for r in finished if r.resolved_by and r.resolved_by != SYSTEM_ACTOR
        ),
        reopened=sum(1 for r in tickets if r.reopen_count > 0),
        breached=sum(
            1
            for r in tickets
            if r.response_breached_at is not None or r.resolution_breached_at is not None
        ),
        by_category=_every(r.category for r in tickets),
        by_check=_most_first(Counter(r.check_id for r in tickets)),
        by_machine=_machines(tickets),
        by_priority=_in_order(Priority, (r.priority for r in tickets)),
        by_tier=_in_order(Tier, (r.tier for r in tickets)),
        per_day=_per_day(tickets, since, until),
        first_response=duration_stats(
            _seconds(r.acknowledged_at - r.opened_at) for r in tickets if r.acknowledged_at
        ),
        resolution=duration_stats(
            _seconds(r.finished_at - r.opened_at) for r in finished if r.finished_at
        ),
        response_sla=_tally(_response_met(r, now) for r in tickets),
        resolution_sla=_tally(_resolution_met(r, now) for r in tickets),
    )


def duration_stats(seconds: Iterable[float]) -> DurationStats:
    """Count, median and p90 (linear interpolation, statistics' "inclusive" method)."""
    values = sorted(seconds)
    if not values:
        return DurationStats()
    if len(values) == 1:
        return DurationStats(1, values[0], values[0])
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return DurationStats(len(values), statistics.median(values), deciles[8])


def load(session: Session, since: datetime, until: datetime) -> list[ReportTicket]:
    """The tickets opened in [since, until), with their machine's hostname."""
    found = session.execute(
        select(
            Ticket.agent_id,
            Agent.hostname,
            Ticket.check_id,
            Ticket.category,
            Ticket.priority,
            Ticket.tier,
            Ticket.state,
            Ticket.opened_at,
            Ticket.acknowledged_at,
            Ticket.resolved_at,
            Ticket.closed_at,
            Ticket.resolved_by,
            Ticket.respond_by,
            Ticket.resolve_by,
            Ticket.response_breached_at,
            Ticket.resolution_breached_at,
            Ticket.sla_paused_at,
            Ticket.reopen_count,
        )
        .join(Agent, Agent.id == Ticket.agent_id)
        .where(Ticket.opened_at >= since, Ticket.opened_at < until)
        .order_by(Ticket.opened_at, Ticket.id)
    )
    return [ReportTicket(*row) for row in found]


def _response_met(r: ReportTicket, now: datetime) -> bool | None:
    """True met, False missed, None not counted (see the module's docstring)."""
    if r.respond_by is None:
        return None
    if r.acknowledged_at is not None:
        return r.acknowledged_at <= r.respond_by
    if r.finished:
        done = r.finished_at
        return None if done is None or done <= r.respond_by else False
    return False if _clock(r, now) > r.respond_by else None


def _resolution_met(r: ReportTicket, now: datetime) -> bool | None:
    if r.resolve_by is None:
        return None
    if r.finished:
        done = r.finished_at
        return None if done is None else done <= r.resolve_by
    return False if _clock(r, now) > r.resolve_by else None


def _name(member: IntEnum) -> str:
    return member.name


def _clock(r: ReportTicket, now: datetime) -> datetime:
    """The SLA clock of an open ticket: it stands still while a maintenance window pauses it."""
    return min(now, r.sla_paused_at) if r.sla_paused_at is not None else now


def _tally(outcomes: Iterable[bool | None]) -> Compliance:
    counted = Counter(o for o in outcomes if o is not None)
    return Compliance(met=counted[True], missed=counted[False])


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def _most_first(counted: Counter[str], limit: int | None = None) -> Counts:
    ordered = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ordered[:limit])


def _machines(tickets: list[ReportTicket]) -> Counts:
    """Most tickets first, top 10, by hostname; a hostname two agents share gets the agent id."""
    per_agent = Counter(r.agent_id for r in tickets)
    hostnames = {r.agent_id: r.hostname for r in tickets}
    shared = Counter(hostnames.values())
    labelled: Counter[str] = Counter()
    for agent_id, count in per_agent.items():
        name = hostnames[agent_id]
        labelled[f"{name} ({agent_id})" if shared[name] > 1 else name] = count
    return _most_first(labelled, TOP_MACHINES)


def _every(values: Iterable[int]) -> Counts:
    """Every category, zeros included, most first (ties in the vocabulary's order)."""
    in_order = _in_order(Category, values, lambda member: Category(member).label)
    return tuple(sorted(in_order, key=lambda item: -item[1]))


def _in_order(
    kind: type[IntEnum], values: Iterable[int], name: Callable[[IntEnum], str] = _name
) -> Counts:
    """Every member of the vocabulary in its own order, zeros included; unknown values last."""
    counted = Counter(values)
    known = tuple((name(member), counted.pop(int(member), 0)) for member in kind)
    unknown = tuple((f"unknown ({value})", n) for value, n in sorted(counted.items()))
    return known + unknown


def _per_day(tickets: list[ReportTicket], since: datetime, until: datetime) -> Counts:
    """Every UTC day from the one `since` falls in to the one just before `until`."""
    counted = Counter(_utc_day(r.opened_at) for r in tickets)
    day, last = _utc_day(since), _utc_day(until - timedelta(microseconds=1))
    days: list[tuple[str, int]] = []
    while day <= last:
        days.append((day.isoformat(), counted[day]))
        day += DAY
    return tuple(days)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
