"""Maintenance windows: when one is active, which machines it covers, and its rows in the store.

A window is one-off (`starts_at` plus a duration) or recurring (a 5-field cron expression read in
the window's IANA timezone, plus a duration). It is active from a start up to, not including,
start + duration; the duration is elapsed time, so a 3h window that opens the night clocks go
forward still lasts three hours. Cron fire times come from APScheduler 3, which reads the local
wall clock: a start in the hour skipped in spring is read with the offset before the change
(01:30 in Lisbon becomes 02:30 summer time), and a start in the hour repeated in autumn happens
at both of its occurrences.

The cron day-of-week field means what it means in crontab (0 or 7 is Sunday, `*/2` is Sunday,
Tuesday, ...); it is rewritten into weekday names for APScheduler, whose numbers start at Monday.
When both day of month and day of week are restricted, a start needs both to match (APScheduler),
unlike Vixie cron, which takes either: `0 2 1-7 * sun` is the first Sunday of the month.

The functions on `WindowSpec` are pure; the store functions at the end read and write rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import Agent, MaintenanceWindow
from remdiag import crontab

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 128
MAX_CRON_CHARS = 128  # maintenance_windows.cron is String(128)
MAX_TIMEZONE_CHARS = 64  # maintenance_windows.timezone is String(64)
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=31)
MAX_TAGS = 32
TAG_RULE = "1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
MAX_AGENT_IDS = 1000
MAX_ACTOR_CHARS = 128  # maintenance_windows.created_by is String(128)

_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # the syntax of machine tags (fleet.TAG)
_AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,36}")
_TICK = timedelta(microseconds=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class WindowError(ValueError):
    """A maintenance window that cannot be; the text says which field and why, in one line."""


@dataclass(frozen=True)
class WindowSpec:
    """What a maintenance window is, without its id and bookkeeping. Build it with `window()`
    (validated) or `from_row()` (trusted: rows are only written from validated specs)."""

    name: str
    starts_at: datetime | None
    """UTC, aware; set for a one-off window."""
    cron: str | None
    """Five fields (crontab weekdays), read in `timezone`; set for a recurring window."""
    timezone: str
    duration: timedelta
    all_machines: bool
    tags: frozenset[str]
    agent_ids: frozenset[str]

    @classmethod
    def from_row(cls, row: MaintenanceWindow) -> WindowSpec:
        return cls(
            name=row.name,
            starts_at=row.starts_at,
            cron=row.cron,
            timezone=row.timezone,
            duration=timedelta(minutes=row.duration_minutes),
            all_machines=row.all_machines,
            tags=frozenset(row.tags),
            agent_ids=frozenset(row.agent_ids),
        )


def window(
    *,
    name: str,
    starts_at: datetime | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
    duration: timedelta,
    all_machines: bool = False,
    tags: Iterable[str] = (),
    agent_ids: Iterable[str] = (),
) -> WindowSpec:
    """A validated WindowSpec; WindowError says what is wrong. Empty strings count as absent."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise WindowError(f"name: 1 to {MAX_NAME_CHARS} printable characters")
    cron = (cron or "").strip() or None
    if (starts_at is None) == (cron is None):
        raise WindowError("give exactly one of a start time (one-off) or a cron (recurring)")
    _zone(timezone)
    if starts_at is not None:
        if starts_at.tzinfo is None or starts_at.utcoffset() is None:
            raise WindowError("start time: needs a timezone (or UTC)")
        starts_at = starts_at.astimezone(UTC)
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise WindowError("duration: between 1 minute and 31 days")
    if duration % timedelta(minutes=1):
        raise WindowError("duration: a whole number of minutes")
    if cron is not None and _fire_at_or_after(cron, timezone, EPOCH) is None:
        raise WindowError(f"cron {cron!r}: never fires (no such date)")
    tag_set = _tokens("tag", tags, MAX_TAGS, _TAG, TAG_RULE)
    id_set = _tokens("machine", agent_ids, MAX_AGENT_IDS, _AGENT_ID, "an agent id (remdiag agents)")
    if all_machines and (tag_set or id_set):
        raise WindowError("scope: either all machines, or tags and machines, not both")
    if not all_machines and not (tag_set or id_set):
        raise WindowError("scope: give at least one tag or machine, or all machines")
    return WindowSpec(
        name=name,
        starts_at=starts_at,
        cron=cron,
        timezone=timezone,
        duration=duration,
        all_machines=all_machines,
        tags=tag_set,
        agent_ids=id_set,
    )


def start_time(text: str, timezone: str) -> datetime:
    """An ISO 8601 start (2026-12-01T22:00, ...Z, ...+01:00) as UTC; one without an offset is
    read in `timezone` (a time the clocks skip or repeat there takes the offset before the
    change)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(
            f"start {text!r}: expected ISO 8601 such as 2026-12-01T22:00 or 2026-12-01T22:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(timezone))
    return parsed.astimezone(UTC)


# --- Pure rules ---------------------------------------------------------------------------------


def is_active(spec: WindowSpec, now: datetime) -> bool:
    """Whether some start of the window lies in (now - duration, now]."""
    if spec.starts_at is not None:
        return spec.starts_at <= now < spec.starts_at + spec.duration
    assert spec.cron is not None
    # Fires are on whole seconds, so "after now - duration" is "at or after it plus a tick".
    lower = now - spec.duration + _TICK
    first = _fire_at_or_after(spec.cron, spec.timezone, lower)
    if first is not None and lower <= first <= now:
        return True
    if not _clocks_jump(spec.timezone, lower - SLACK, now + SLACK):
        return False
    return any(
        fire <= now
        for fire in _walk(spec.cron, spec.timezone, lower - SLACK, now + SLACK)
        if fire >= lower
    )


def next_start(spec: WindowSpec, now: datetime) -> datetime | None:
    """The first start strictly after `now` (UTC); None for a one-off that has already started,
    or a cron that never fires again."""
    if spec.starts_at is not None:
        return spec.starts_at if spec.starts_at > now else None
    assert spec.cron is not None
    found = _fire_at_or_after(spec.cron, spec.timezone, now + _TICK)
    if _clocks_jump(spec.timezone, now - SLACK, now + SLACK):
        later = [f for f in _walk(spec.cron, spec.timezone, now - SLACK, now + SLACK) if f > now]
        found = min([*later, *([found] if found is not None else [])], default=None)
    return found


def covers(spec: WindowSpec, agent_id: str, tags: Iterable[str]) -> bool:
    """Whether the window's scope takes in this machine (by id, by any of its tags, or all)."""
    if spec.all_machines or agent_id in spec.agent_ids:
        return True
    return not spec.tags.isdisjoint(tags)


# APScheduler walks the local wall clock and reads a time the clocks skip with the offset from
# before the jump: in Lisbon on the spring night, 01:30 is read as 01:30 UTC (02:30 summer time).
# A search that begins after the jump in wall-clock terms (02:10 summer time, 01:10 UTC) never
# sees that start although it lies later in real time. So near a forward jump the start times are
# also walked from SLACK earlier, SLACK being longer than any jump in the tz database's rules.
SLACK = timedelta(hours=3)


def _clocks_jump(timezone: str, since: datetime, until: datetime) -> bool:
    """Whether the clocks go forward between the two instants (a window is at most 31 days, and
    no zone jumps forward and back within that)."""
    zone = _zone(timezone)
    before, after = since.astimezone(zone).utcoffset(), until.astimezone(zone).utcoffset()
    return before is not None and after is not None and after > before


def _walk(cron: str, timezone: str, since: datetime, until: datetime) -> Iterator[datetime]:
    """The fire times (UTC) from `since`, in APScheduler's wall-clock order, until one passes
    `until` (a start read in a skipped hour may be out of real-time order by up to the jump)."""
    trigger = _trigger(cron, timezone)
    fire = trigger.get_next_fire_time(None, since)
    while fire is not None:
        instant: datetime = fire.astimezone(UTC)
        yield instant
        if instant > until:
            return
        # With a previous fire time, the search resumes just after it.
        fire = trigger.get_next_fire_time(fire, fire)


def _fire_at_or_after(cron: str, timezone: str, moment: datetime) -> datetime | None:
    fire: datetime | None = _trigger(cron, timezone).get_next_fire_time(None, moment)
    # Compare in UTC only: aware datetimes sharing one tzinfo compare by wall clock, fold ignored.
    return None if fire is None else fire.astimezone(UTC)


@lru_cache(maxsize=256)
def _trigger(cron: str, timezone: str) -> Any:
    """APScheduler's CronTrigger for a crontab expression; cached, as it is asked per batch."""
    if len(cron) > MAX_CRON_CHARS:
        raise WindowError(f"cron: at most {MAX_CRON_CHARS} characters")
    fields = cron.split()
    if len(fields) != 5:
        raise WindowError(
            f"cron {cron!r}: expected 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    fields[4] = _scheduler_weekdays(cron, fields[4])
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=_zone(timezone))
    except ValueError as exc:
        raise WindowError(f"cron {cron!r}: {exc}") from None


def _scheduler_weekdays(cron: str, field: str) -> str:
    """Crontab's day-of-week field (0 or 7 is Sunday) as APScheduler 3 weekday names."""
    try:
        return crontab.scheduler_weekdays(field)
    except crontab.CronError as exc:
        raise WindowError(f"cron {cron!r}: {exc}") from None


def _zone(name: str) -> ZoneInfo:
    if not name or len(name) > MAX_TIMEZONE_CHARS:
        raise WindowError(f"timezone: an IANA name such as Europe/Lisbon, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"timezone {name!r}: not an IANA name such as Europe/Lisbon") from None


def _tokens(
    what: str, values: Iterable[str], max_count: int, syntax: re.Pattern[str], rule: str
) -> frozenset[str]:
    out = frozenset(v.strip() for v in values)
    if len(out) > max_count:
        raise WindowError(f"at most {max_count} {what}s")
    for value in sorted(out):
        if not syntax.fullmatch(value):
            raise WindowError(f"{what} {value!r}: {rule}")
    return out


# --- Store --------------------------------------------------------------------------------------


def create(session: Session, spec: WindowSpec, actor: str, now: datetime) -> MaintenanceWindow:
    """Store a validated window. WindowError if it names a machine that is not enrolled."""
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR_CHARS:
        raise WindowError(f"actor: 1 to {MAX_ACTOR_CHARS} characters")
    if spec.agent_ids:
        known = set(session.scalars(select(Agent.id).where(Agent.id.in_(spec.agent_ids))))
        unknown = sorted(spec.agent_ids - known)
        if unknown:
            raise WindowError(f"no machine {', '.join(unknown[:5])}")
    row = MaintenanceWindow(
        name=spec.name,
        starts_at=spec.starts_at,
        cron=spec.cron,
        timezone=spec.timezone,
        duration_minutes=spec.duration // timedelta(minutes=1),
        all_machines=spec.all_machines,
        tags=sorted(spec.tags),
        agent_ids=sorted(spec.agent_ids),
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def list_windows(session: Session) -> list[MaintenanceWindow]:
    """Every window, oldest first (the table is small: windows are made by hand)."""
    return list(session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id)))


def delete(session: Session, window_id: int) -> bool:
    """False when there is no such window."""
    row = session.get(MaintenanceWindow, window_id)
    if row is None:
        return False
    session.delete(row)
    return True


def active_windows(session: Session, now: datetime) -> list[tuple[MaintenanceWindow, WindowSpec]]:
    """The windows active at `now`, oldest first, each with its spec. One query."""
    active: list[tuple[MaintenanceWindow, WindowSpec]] = []
    for row in list_windows(session):
        spec = WindowSpec.from_row(row)
        try:
            if is_active(spec, now):
                active.append((row, spec))
        except WindowError as exc:  # written by hand into the table, or a timezone since removed
            log.warning("maintenance window %s is ignored: %s", row.id, exc)
    return active


def in_maintenance(
    session: Session, agent_id: str, tags: Sequence[str], now: datetime
) -> MaintenanceWindow | None:
    """The oldest window active at `now` that covers this machine, or None. One query."""
    for row, spec in active_windows(session, now):
        if covers(spec, agent_id, tags):
            return row
    return None


def machines_in_maintenance(
    session: Session, machines: Iterable[tuple[str, Sequence[str]]], now: datetime
) -> dict[str, MaintenanceWindow]:
    """For (agent_id, tags) pairs, the covered machines' ids -> the oldest active window covering
    each; machines not covered are absent. One query, whatever the number of machines."""
    active = active_windows(session, now)
    covered: dict[str, MaintenanceWindow] = {}
    if not active:
        return covered
    for agent_id, tags in machines:
        for row, spec in active:
            if covers(spec, agent_id, tags):
                covered[agent_id] = row
                break
    return covered


def agents_in_maintenance(session: Session, now: datetime) -> dict[str, MaintenanceWindow]:
    """Every enrolled machine covered at `now` -> the oldest active window covering it; reads the
    agents' tags itself, and only when some window is active (two queries at most)."""
    active = active_windows(session, now)
    covered: dict[str, MaintenanceWindow] = {}
    if not active:
        return covered
    for agent_id, tags in session.execute(select(Agent.id, Agent.tags)):
        for row, spec in active:
            if covers(spec, agent_id, tags):
                covered[agent_id] = row
                break
    return covered
