"""Scheduled maintenance tasks: named diagnostic actions run on a cron across a target, each
machine's start spread over a window; their runs, how each ended, and the job that drives them.

A task is up to ten steps (actions from the agents' allowlist, collector/actions.py), a 5-field
cron read in an IANA timezone (crontab weekdays and daylight-saving handling as for maintenance
windows, collector/windows.py), a window of 1 to 1440 minutes and a target (every machine, or
machines by tag or id). At each occurrence every machine of the target gets a run; its start is
spread over the window with deterministic jitter (`stagger`), so a thousand machines do not
start at once. When its start passes, the run's steps are queued as diagnostics that expire
when the window ends: a connected machine gets them at once, an offline one when it connects,
if the window is still open. A run ends done (every step done), failed (a step failed or was
refused: a ticket opens for the machine, check id `task:NAME`) or missed (the machine did not
come back in time).

One rule differs from maintenance windows: a wall-clock time the clocks repeat in autumn runs
once, at its first occurrence, as in cron (a window opens at both). A time the clocks skip in
spring runs once, read with the offset from before the change (01:30 in Lisbon is 02:30 summer
time).

Several collectors on one database share the work: the run rows are unique per task,
occurrence and machine (inserts that find one already there do nothing), and a run's steps
are queued under a lock on its task, so no run is created or started twice.

The rules (validation, occurrences, `stagger`) are pure; the store functions below them read and
write rows; `tick` is the periodic job (collector/jobs.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector import actions, bus, diagnostics, windows
from collector.desk import new_ticket
from collector.diagnostics import DiagnosticError, DiagnosticView
from collector.store.models import (
    CLOSED_STATES,
    Agent,
    Diagnostic,
    MaintenanceTask,
    TaskRun,
    Ticket,
)
from collector.store.runner import Store
from collector.timeline import record
from collector.triage import DeskSettings
from remdiag.vocabulary import Category, DiagnosticState, Severity

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 48
"""So that `preventive:NAME` fits a ticket's check id (String(64))."""
MAX_STEPS = 10
MIN_WINDOW_MINUTES = 1
MAX_WINDOW_MINUTES = 1440
CHECK_PREFIX = "task:"
PENDING, DONE, FAILED, MISSED = "pending", "done", "failed", "missed"
OUTCOMES = (PENDING, DONE, FAILED, MISSED)
SETTLE_GRACE = timedelta(hours=1)
"""A step sent but still unanswered this long after its run's window closed: the run is missed."""
TICK_SECONDS = 5.0
"""How often the job creates, starts and settles runs (collector/jobs.py)."""
MAX_STARTS_PER_TICK = 2000
DEFAULT_HISTORY = 200
MAX_HISTORY = 1000
_INSERT_CHUNK = 500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")
_STEP_GAP = timedelta(microseconds=1)
"""Steps are requested this far apart, so a machine receives them in order."""
_FINAL = tuple(int(s) for s in DiagnosticState if s.is_final)
_WAITING = tuple(int(s) for s in diagnostics.WAITING)


class TaskError(ValueError):
    """A task (or target, or schedule) that cannot be; the text says which field and why."""


# --- Targets and schedules, shared with recurring tickets (collector/recurring.py) ------------


@dataclass(frozen=True)
class Target:
    """Which machines: every one, or those listed plus those with any of the tags."""

    all_machines: bool
    tags: frozenset[str]
    agent_ids: frozenset[str]

    def covers(self, agent_id: str, tags: Iterable[str]) -> bool:
        if self.all_machines or agent_id in self.agent_ids:
            return True
        return not self.tags.isdisjoint(tags)

    def as_json(self) -> dict[str, Any]:
        return {
            "all_machines": self.all_machines,
            "tags": sorted(self.tags),
            "agent_ids": sorted(self.agent_ids),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Target:
        return cls(
            all_machines=bool(value.get("all_machines")),
            tags=frozenset(value.get("tags") or ()),
            agent_ids=frozenset(value.get("agent_ids") or ()),
        )


def target(
    *, all_machines: bool = False, tags: Iterable[str] = (), agent_ids: Iterable[str] = ()
) -> Target:
    """A validated target (same rules as a maintenance window's scope); TaskError if not."""
    try:
        tag_set = windows._tokens("tag", tags, windows.MAX_TAGS, windows._TAG, windows.TAG_RULE)
        id_set = windows._tokens(
            "machine",
            agent_ids,
            windows.MAX_AGENT_IDS,
            windows._AGENT_ID,
            "an agent id (remdiag agents)",
        )
    except windows.WindowError as exc:
        raise TaskError(f"target: {exc}") from None
    if all_machines and (tag_set or id_set):
        raise TaskError("target: either all machines, or tags and machines, not both")
    if not all_machines and not (tag_set or id_set):
        raise TaskError("target: give at least one tag or machine, or all machines")
    return Target(all_machines, tag_set, id_set)


def check_name(name: str, what: str = "name") -> str:
    """A task's or recurring ticket's name: it becomes part of a ticket's check id."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise TaskError(
            f"{what} {name!r}: 1 to {MAX_NAME_CHARS} letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_schedule(cron: str, timezone: str) -> str:
    """The cron, stripped, if it is 5 valid fields that fire some day in `timezone`."""
    cron = cron.strip()
    if not cron:
        raise TaskError("cron: required, e.g. '0 2 * * 0' (Sundays 02:00)")
    try:
        windows._zone(timezone)
        if windows._fire_at_or_after(cron, timezone, windows.EPOCH) is None:
            raise TaskError(f"cron {cron!r}: never fires (no such date)")
    except windows.WindowError as exc:
        raise TaskError(str(exc)) from None
    return cron


def next_occurrence(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (UTC), None if the cron never fires again.

    A wall-clock time repeated when the clocks go back counts once (its first occurrence)."""
    spec = windows.WindowSpec(
        name="",
        starts_at=None,
        cron=cron,
        timezone=timezone,
        duration=windows.MIN_DURATION,
        all_machines=True,
        tags=frozenset(),
        agent_ids=frozenset(),
    )
    zone = windows._zone(timezone)
    found = windows.next_start(spec, after)
    while found is not None and _is_repeat(found, zone):
        found = windows.next_start(spec, found)
    return found


def _is_repeat(instant: datetime, zone: Any) -> bool:
    """Whether `instant` is the second occurrence of a wall-clock time the clocks repeat."""
    local = instant.astimezone(zone)
    return bool(local.fold) and local.replace(fold=0).astimezone(UTC) != instant


def occurrences(cron: str, timezone: str, since: datetime, until: datetime) -> list[datetime]:
    """Every occurrence in (since, until], in order (UTC)."""
    found: list[datetime] = []
    at = next_occurrence(cron, timezone, since)
    while at is not None and at <= until:
        found.append(at)
        at = next_occurrence(cron, timezone, at)
    return found


def stagger(
    agent_ids: Iterable[str], occurrence: datetime, window: timedelta, seed: str
) -> dict[str, datetime]:
    """Each machine's start within [occurrence, occurrence + window).

    The machines are put in an order that a hash of (seed, occurrence, agent id) decides, the
    window is cut into as many equal slots, and each machine starts in its own slot at a point
    the same hash decides. So starts are spread evenly whatever the number of machines, nobody
    can predict or pick their place, and the same inputs always give the same starts (any
    collector computes the same plan)."""
    ids = sorted(set(agent_ids))
    if not ids:
        return {}
    stamp = occurrence.astimezone(UTC).isoformat()
    digests = {i: hashlib.sha256(f"{seed}|{stamp}|{i}".encode()).digest() for i in ids}
    ordered = sorted(ids, key=lambda i: (digests[i][:8], i))
    slot = window / len(ordered)
    starts: dict[str, datetime] = {}
    for position, agent_id in enumerate(ordered):
        jitter = int.from_bytes(digests[agent_id][8:16], "big") / 2**64  # [0, 1)
        offset = slot * (position + jitter)
        starts[agent_id] = occurrence + min(offset, window - timedelta(microseconds=1))
    return starts


# --- Tasks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    action: str
    args: dict[str, Any]


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, without its id and bookkeeping. Build it with `task()` (validated) or
    `from_row()` (trusted: rows are only written from validated specs)."""

    name: str
    steps: tuple[Step, ...]
    cron: str
    timezone: str
    window: timedelta
    target: Target

    @classmethod
    def from_row(cls, row: MaintenanceTask) -> TaskSpec:
        return cls(
            name=row.name,
            steps=tuple(Step(s["action"], dict(s.get("args") or {})) for s in row.steps),
            cron=row.cron,
            timezone=row.timezone,
            window=timedelta(minutes=row.window_minutes),
            target=Target.from_json(row.target),
        )

    @property
    def check_id(self) -> str:
        return CHECK_PREFIX + self.name


def task(
    *,
    name: str,
    steps: Sequence[tuple[str, dict[str, Any]]],
    cron: str,
    timezone: str = "UTC",
    window_minutes: int,
    target: Target,
) -> TaskSpec:
    """A validated TaskSpec (step arguments get their defaults); TaskError says what is wrong."""
    name = check_name(name)
    if not 1 <= len(steps) <= MAX_STEPS:
        raise TaskError(f"steps: 1 to {MAX_STEPS} actions (remdiag actions lists them)")
    valid: list[Step] = []
    for number, (action, args) in enumerate(steps, 1):
        try:
            valid.append(Step(action, actions.validate(action, args)))
        except DiagnosticError as exc:
            raise TaskError(f"step {number}: {exc}") from None
    cron = check_schedule(cron, timezone or "UTC")
    if not MIN_WINDOW_MINUTES <= window_minutes <= MAX_WINDOW_MINUTES:
        raise TaskError(
            f"window: {MIN_WINDOW_MINUTES} to {MAX_WINDOW_MINUTES} minutes (24 hours), "
            f"got {window_minutes}"
        )
    return TaskSpec(
        name=name,
        steps=tuple(valid),
        cron=cron,
        timezone=timezone or "UTC",
        window=timedelta(minutes=window_minutes),
        target=target,
    )


def check_machines(session: Session, wanted: Target) -> None:
    """TaskError if the target names a machine that is not enrolled."""
    if not wanted.agent_ids:
        return
    known = set(session.scalars(select(Agent.id).where(Agent.id.in_(wanted.agent_ids))))
    unknown = sorted(wanted.agent_ids - known)
    if unknown:
        raise TaskError(f"target: no machine {', '.join(unknown[:5])}")


def check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > 128:
        raise TaskError("actor: 1 to 128 characters")
    return actor


def create(session: Session, spec: TaskSpec, actor: str, now: datetime) -> MaintenanceTask:
    """Store a validated task, its first run due at the next occurrence after `now`."""
    actor = check_actor(actor)
    check_machines(session, spec.target)
    row = MaintenanceTask(
        name=spec.name,
        steps=[{"action": s.action, "args": s.args} for s in spec.steps],
        cron=spec.cron,
        timezone=spec.timezone,
        window_minutes=spec.window // timedelta(minutes=1),
        target=spec.target.as_json(),
        created_at=now,
        created_by=actor,
        next_run_at=next_occurrence(spec.cron, spec.timezone, now),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise TaskError(f"a task named {spec.name!r} already exists") from None
    return row


def list_tasks(session: Session) -> list[MaintenanceTask]:
    """Every task, oldest first (made by hand: few)."""
    return list(session.scalars(select(MaintenanceTask).order_by(MaintenanceTask.id)))


def delete(session: Session, task_id: int) -> bool:
    """False when there is no such task. Its runs go with it; its tickets stay."""
    row = session.get(MaintenanceTask, task_id)
    if row is None:
        return False
    session.delete(row)
    return True


@dataclass(frozen=True)
class RunView:
    """A run with its machine's host name and its steps' diagnostics, in step order."""

    run: TaskRun
    hostname: str
    steps: list[DiagnosticView] = field(default_factory=list)


def history(
    session: Session, task_id: int, limit: int = 0
) -> tuple[MaintenanceTask, list[RunView]] | None:
    """A task and its runs, newest occurrence first; None when there is no such task."""
    row = session.get(MaintenanceTask, task_id)
    if row is None:
        return None
    found = session.execute(
        select(TaskRun, Agent.hostname)
        .join(Agent, Agent.id == TaskRun.agent_id)
        .where(TaskRun.task_id == task_id)
        .order_by(TaskRun.scheduled_for.desc(), TaskRun.start_at, TaskRun.id)
        .limit(min(limit or DEFAULT_HISTORY, MAX_HISTORY))
    ).all()
    views = [RunView(run, hostname) for run, hostname in found]
    by_run = {v.run.id: v for v in views}
    if by_run:
        steps = session.scalars(
            select(Diagnostic)
            .where(Diagnostic.task_run_id.in_(by_run))
            .order_by(Diagnostic.requested_at, Diagnostic.id)
        )
        for step in steps:
            assert step.task_run_id is not None
            view = by_run[step.task_run_id]
            view.steps.append(DiagnosticView(step, view.hostname))
    return row, views


# --- The job ------------------------------------------------------------------------------------


def machines(session: Session, wanted: Target) -> list[str]:
    """The enrolled, unrevoked machines a target takes in, by id."""
    rows = session.execute(select(Agent.id, Agent.tags).where(Agent.revoked_at.is_(None)))
    return sorted(agent_id for agent_id, tags in rows if wanted.covers(agent_id, tags or ()))


def schedule_due(session: Session, now: datetime) -> int:
    """(a) For each task whose next occurrence has come, a pending run per machine of its target,
    starts staggered over the window; then the next occurrence. An occurrence whose whole window
    passed with no collector running is skipped. How many runs were created."""
    due = session.scalars(
        select(MaintenanceTask)
        .where(MaintenanceTask.next_run_at <= now)
        .order_by(MaintenanceTask.id)
        .with_for_update(skip_locked=True)
    ).all()
    created = 0
    for row in due:
        spec = TaskSpec.from_row(row)
        try:
            while row.next_run_at is not None and row.next_run_at <= now:
                occurrence = row.next_run_at
                if occurrence + spec.window <= now:
                    log.warning(
                        "task %r: the run of %s was missed (no collector ran during its window)",
                        spec.name,
                        f"{occurrence:%Y-%m-%d %H:%M} UTC",
                    )
                    row.next_run_at = next_occurrence(spec.cron, spec.timezone, now - spec.window)
                    continue
                created += _schedule(session, row.id, spec, occurrence)
                row.last_run_at = occurrence
                row.next_run_at = next_occurrence(spec.cron, spec.timezone, occurrence)
        except windows.WindowError as exc:  # a row written by hand, or a timezone since removed
            log.warning("task %r is not scheduled: %s", spec.name, exc)
            row.next_run_at = None
    return created


def _schedule(session: Session, task_id: int, spec: TaskSpec, occurrence: datetime) -> int:
    starts = stagger(machines(session, spec.target), occurrence, spec.window, str(task_id))
    rows = [
        {
            "task_id": task_id,
            "agent_id": agent_id,
            "scheduled_for": occurrence,
            "start_at": start,
            "window_ends_at": occurrence + spec.window,
            "outcome": PENDING,
        }
        for agent_id, start in starts.items()
    ]
    return _insert_new_runs(session, rows)


def _insert_new_runs(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the runs that are not there yet (another collector may have made some): the
    unique (task, occurrence, machine) constraint decides, with ON CONFLICT DO NOTHING."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = 0
    for first in range(0, len(rows), _INSERT_CHUNK):
        statement = (
            insert(TaskRun)
            .values(rows[first : first + _INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=["task_id", "scheduled_for", "agent_id"])
            .returning(TaskRun.id)
        )
        created += len(session.execute(statement).all())
    return created


Vet = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Checks a step as the dispatcher would (allowlist, arguments, remediation policy)."""


@dataclass(frozen=True)
class Started:
    started: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    missed: tuple[int, ...] = ()


def start_due(session: Session, now: datetime, vet: Vet, desk: DeskSettings) -> Started:
    """(b) Queue the steps of each pending run whose start has come and whose window is open,
    as diagnostics requested by `task:NAME` that expire when the window ends. A step the
    dispatcher would refuse fails the run at once; a revoked machine's run is missed."""
    unstarted = (
        select(TaskRun.task_id)
        .where(
            TaskRun.outcome == PENDING,
            TaskRun.start_at <= now,
            TaskRun.window_ends_at > now,
            ~exists().where(Diagnostic.task_run_id == TaskRun.id),
        )
        .distinct()
    )
    # The task's row lock makes one collector at a time start its runs; the runs are read
    # after it is taken, so they are seen as the previous holder left them.
    locked = session.scalars(
        select(MaintenanceTask)
        .where(MaintenanceTask.id.in_(unstarted))
        .order_by(MaintenanceTask.id)
        .with_for_update(skip_locked=True)
    ).all()
    started: list[int] = []
    failed: list[int] = []
    missed: list[int] = []
    for row in locked:
        spec = TaskSpec.from_row(row)
        runs = session.execute(
            select(TaskRun, Agent)
            .join(Agent, Agent.id == TaskRun.agent_id)
            .where(
                TaskRun.task_id == row.id,
                TaskRun.outcome == PENDING,
                TaskRun.start_at <= now,
                TaskRun.window_ends_at > now,
                ~exists().where(Diagnostic.task_run_id == TaskRun.id),
            )
            .order_by(TaskRun.start_at, TaskRun.id)
            .limit(MAX_STARTS_PER_TICK)
        ).all()
        for run, agent in runs:
            if agent.revoked_at is not None:
                run.outcome = MISSED
                missed.append(run.id)
                continue
            valid, refused = _vetted(spec, vet)
            if refused:
                _fail(session, run, spec, agent, refused, now, desk, [])
                failed.append(run.id)
                continue
            for number, (action, args) in enumerate(valid):
                asked_at = now + _STEP_GAP * number
                diagnostics.request(
                    session,
                    agent.id,
                    action,
                    args,
                    f"{CHECK_PREFIX}{spec.name}",
                    asked_at,
                    run.window_ends_at - asked_at,
                    task_run_id=run.id,
                )
            started.append(run.id)
    return Started(tuple(started), tuple(failed), tuple(missed))


def _vetted(spec: TaskSpec, vet: Vet) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """The steps as the dispatcher would send them, or why it would refuse one."""
    valid: list[tuple[str, dict[str, Any]]] = []
    for number, step in enumerate(spec.steps, 1):
        try:
            valid.append((step.action, vet(step.action, step.args)))
        except DiagnosticError as exc:
            return [], f"step {number} ({step.action}) was refused by the collector: {exc}"
    return valid, ""


def waiting_machines(session: Session, now: datetime) -> list[str]:
    """Machines with task steps queued for them (to hand to their stream if this collector
    holds it: the run may have been started by another collector)."""
    return list(
        session.scalars(
            select(Diagnostic.agent_id)
            .where(
                Diagnostic.task_run_id.is_not(None),
                Diagnostic.state == int(DiagnosticState.QUEUED),
                Diagnostic.expires_at > now,
            )
            .distinct()
        )
    )


@dataclass(frozen=True)
class Settled:
    done: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    missed: tuple[int, ...] = ()
    tickets: tuple[int, ...] = ()


def outcome_of(states: Sequence[DiagnosticState]) -> str:
    """Pure: a run's outcome from its steps' states, in step order (pending while any waits)."""
    if not states or not all(s.is_final for s in states):
        return PENDING
    if any(s in (DiagnosticState.FAILED, DiagnosticState.REFUSED) for s in states):
        return FAILED
    if any(s is DiagnosticState.EXPIRED for s in states):
        return MISSED
    return DONE


def settle(session: Session, now: datetime, desk: DeskSettings) -> Settled:
    """(c) Settle pending runs: every step done -> done; a step failed or refused -> failed, and
    a ticket opens (or the machine's open one for this task is added to); steps expired before
    the machine came back -> missed. A run never started by the end of its window, or with a
    step still unanswered SETTLE_GRACE after it, is missed."""
    has_steps = exists().where(Diagnostic.task_run_id == TaskRun.id)
    still_waiting = exists().where(
        Diagnostic.task_run_id == TaskRun.id, Diagnostic.state.in_(_WAITING)
    )
    candidates = session.execute(
        select(TaskRun, Agent)
        .join(Agent, Agent.id == TaskRun.agent_id)
        .where(
            TaskRun.outcome == PENDING,
            TaskRun.start_at <= now,
            (has_steps & ~still_waiting)
            | (~has_steps & (TaskRun.window_ends_at <= now))
            | (TaskRun.window_ends_at <= now - SETTLE_GRACE),
        )
        .order_by(TaskRun.id)
        .with_for_update(of=TaskRun, skip_locked=True)
    ).all()
    if not candidates:
        return Settled()
    steps: dict[int, list[Diagnostic]] = {run.id: [] for run, _ in candidates}
    for step in session.scalars(
        select(Diagnostic)
        .where(Diagnostic.task_run_id.in_(steps))
        .order_by(Diagnostic.requested_at, Diagnostic.id)
    ):
        assert step.task_run_id is not None
        steps[step.task_run_id].append(step)
    specs: dict[int, TaskSpec] = {}
    done: list[int] = []
    failed: list[int] = []
    missed: list[int] = []
    tickets: list[int] = []
    for run, agent in candidates:
        ran = steps[run.id]
        outcome = outcome_of([DiagnosticState(s.state) for s in ran])
        if outcome == PENDING:  # never started, or a step still out after the grace
            run.outcome = MISSED
            missed.append(run.id)
        elif outcome == FAILED:
            if run.task_id not in specs:
                task_row = session.get(MaintenanceTask, run.task_id)
                assert task_row is not None
                specs[run.task_id] = TaskSpec.from_row(task_row)
            spec = specs[run.task_id]
            number, bad = next(
                (n, s)
                for n, s in enumerate(ran, 1)
                if s.state in (int(DiagnosticState.FAILED), int(DiagnosticState.REFUSED))
            )
            verb = "failed" if bad.state == int(DiagnosticState.FAILED) else "was refused"
            why = f"step {number} ({bad.action}) {verb} on the machine: {bad.error or 'no reason'}"
            tickets.append(_fail(session, run, spec, agent, why, now, desk, ran))
            failed.append(run.id)
        else:
            run.outcome = outcome
            (done if outcome == DONE else missed).append(run.id)
    return Settled(tuple(done), tuple(failed), tuple(missed), tuple(tickets))


def _fail(
    session: Session,
    run: TaskRun,
    spec: TaskSpec,
    agent: Agent,
    why: str,
    now: datetime,
    desk: DeskSettings,
    ran: list[Diagnostic],
) -> int:
    """Mark the run failed and open a ticket for the machine (or add to its open one for this
    task); the run's diagnostics are attached to the ticket. The ticket's id."""
    run.outcome = FAILED
    when = f"{run.scheduled_for:%Y-%m-%d %H:%M} UTC"
    message = f"maintenance task {spec.name} (run {run.id}, scheduled {when}): {why}"
    ticket = open_ticket(
        session,
        agent,
        spec.check_id,
        Category.SOFTWARE,
        Severity.WARNING,
        f"maintenance task {spec.name} failed on {agent.hostname}",
        message,
        now,
        desk,
    )
    run.ticket_id = ticket.id
    for step in ran:
        if step.ticket_id is None:
            step.ticket_id = ticket.id
    return ticket.id


def open_ticket(
    session: Session,
    agent: Agent,
    check_id: str,
    category: Category,
    severity: Severity,
    title: str,
    why: str,
    now: datetime,
    desk: DeskSettings,
) -> Ticket:
    """A new ticket placed by triage (priority from severity and the machine's impact, tier, SLA
    deadlines), its first event saying why; or, when the machine already has one open for the
    check, that one, with `why` added to it."""
    ticket = _open_for(session, agent.id, check_id)
    if ticket is not None:
        ticket.failure_count += 1
        record(session, ticket, now, "failure", f"again: {why}")
        return ticket
    ticket, placement = new_ticket(agent, check_id, category, severity, title, now, desk)
    ticket.failure_count = 1
    try:
        with session.begin_nested():
            session.add(ticket)
    except IntegrityError:  # another collector opened it just now: one open ticket per check
        found = _open_for(session, agent.id, check_id)
        if found is None:
            raise
        found.failure_count += 1
        record(session, found, now, "failure", f"again: {why}")
        return found
    record(session, ticket, now, "opened", f"{why}; {placement}")
    return ticket


def _open_for(session: Session, agent_id: str, check_id: str) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(
            Ticket.agent_id == agent_id,
            Ticket.check_id == check_id,
            Ticket.state.not_in(CLOSED_STATES),
        )
    ).first()


@dataclass(frozen=True)
class TickOutcome:
    scheduled: int = 0
    started: Started = Started()
    settled: Settled = Settled()
    handed_over: tuple[str, ...] = ()


class Sender(Protocol):
    """What the job needs of the dispatcher (collector/dispatch.py)."""

    def vet(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments it would send, or DiagnosticError (allowlist, remediation policy)."""

    def holds(self, agent_id: str) -> bool:
        """Whether this collector holds the machine's stream."""

    async def deliver_pending(self, agent_id: str) -> None:
        """Send what is queued for a machine this collector holds."""


async def tick(
    store: Store, sender: Sender, desk: DeskSettings, now: datetime | None = None
) -> TickOutcome:
    """One pass of the job at `now` (the clock by default): create the runs that are due, start
    those whose start has come, hand queued steps to the machines this collector holds, settle
    the runs that ended."""
    at = now or datetime.now(UTC)
    # With several collectors, one schedules, starts and settles in a round (collector/bus.py);
    # each hands queued steps to the machines it holds.
    scheduled = await store.run(
        lambda s: schedule_due(s, at) if bus.run_once(s, "tasks-schedule") else 0
    )
    started = await store.run(
        lambda s: (
            start_due(s, at, sender.vet, desk) if bus.run_once(s, "tasks-start") else Started()
        )
    )
    waiting = await store.run(lambda s: waiting_machines(s, at))
    handed: list[str] = []
    for agent_id in waiting:
        if sender.holds(agent_id):
            await sender.deliver_pending(agent_id)
            handed.append(agent_id)
    settled = await store.run(
        lambda s: settle(s, at, desk) if bus.run_once(s, "tasks-settle") else Settled()
    )
    if scheduled:
        log.info("maintenance tasks: %d runs scheduled", scheduled)
    for what, ids in (
        ("started", started.started),
        ("refused by the collector", started.failed),
        ("done", settled.done),
        ("failed", settled.failed),
        ("missed", settled.missed + started.missed),
    ):
        if ids:
            log.info("maintenance task runs %s: %s", what, ", ".join(map(str, ids)))
    return TickOutcome(scheduled, started, settled, tuple(handed))
