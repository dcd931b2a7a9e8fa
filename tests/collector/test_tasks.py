"""Maintenance tasks: validation, occurrences across daylight-saving changes, staggering (pure);
the job's work on SQLite and PostgreSQL with a fixed clock; the RPCs over real gRPC."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector import actions, desk, diagnostics, tasks
from collector.diagnostics import DiagnosticError
from collector.server import Collector
from collector.store.models import Agent, AuditEntry, Diagnostic, MaintenanceTask, TaskRun, Ticket
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.v1 import console_pb2, console_pb2_grpc
from remdiag.vocabulary import Category, DiagnosticState, Severity, TicketState
from tests.collector.conftest import as_
from tests.collector.factories import enrolled

DESK = DeskSettings()
SUNDAY_2AM = "0 2 * * 0"
LISBON = "Europe/Lisbon"
EVERYONE = tasks.target(all_machines=True)


def spec(**overrides: Any) -> tasks.TaskSpec:
    given: dict[str, Any] = {
        "name": "weekly check-up",
        "steps": [("inventory", {}), ("largest_dirs", {"path": "/home"})],
        "cron": SUNDAY_2AM,
        "timezone": LISBON,
        "window_minutes": 120,
        "target": EVERYONE,
    }
    given.update(overrides)
    return tasks.task(**given)


# --- Pure ---------------------------------------------------------------------------------------


def test_a_valid_task_gets_its_arguments_defaults() -> None:
    made = spec()
    assert made.check_id == "task:weekly check-up"
    assert [s.action for s in made.steps] == ["inventory", "largest_dirs"]
    assert made.steps[1].args["path"] == "/home" and len(made.steps[1].args) >= 1
    assert made.window == timedelta(hours=2)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 49}, "name"),
        ({"name": "bad/name"}, "name"),
        ({"steps": []}, "steps: 1 to 10"),
        ({"steps": [("inventory", {})] * 11}, "steps: 1 to 10"),
        ({"steps": [("rm_rf", {})]}, "step 1: unknown action"),
        ({"steps": [("inventory", {}), ("largest_dirs", {"path": "../etc"})]}, "step 2"),
        ({"cron": ""}, "cron: required"),
        ({"cron": "0 2 * *"}, "expected 5 fields"),
        ({"cron": "0 2 31 2 *"}, "never fires"),
        ({"timezone": "Mars/Olympus"}, "not an IANA name"),
        ({"window_minutes": 0}, "window: 1 to 1440"),
        ({"window_minutes": 1441}, "window: 1 to 1440"),
    ],
)
def test_an_invalid_task_is_refused_with_the_reason(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(tasks.TaskError, match=reason):
        spec(**overrides)


def test_targets_are_all_or_tags_and_machines() -> None:
    with pytest.raises(tasks.TaskError, match="not both"):
        tasks.target(all_machines=True, tags=["lab"])
    with pytest.raises(tasks.TaskError, match="at least one"):
        tasks.target()
    with pytest.raises(tasks.TaskError, match="tag 'Bad Tag'"):
        tasks.target(tags=["Bad Tag"])
    laptops = tasks.target(tags=["laptops"], agent_ids=["a-1"])
    assert laptops.covers("a-1", []) and laptops.covers("a-2", ["laptops"])
    assert not laptops.covers("a-2", ["servers"])


def test_sunday_2am_in_lisbon_across_the_spring_change() -> None:
    # Clocks go forward on 29 March 2026 at 01:00 UTC: 02:00 is WET before, WEST after.
    found = tasks.occurrences(
        SUNDAY_2AM,
        LISBON,
        datetime(2026, 3, 16, tzinfo=UTC),
        datetime(2026, 4, 6, tzinfo=UTC),
    )
    assert found == [
        datetime(2026, 3, 22, 2, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 4, 5, 1, 0, tzinfo=UTC),
    ]


def test_sunday_2am_in_lisbon_across_the_autumn_change() -> None:
    found = tasks.occurrences(
        SUNDAY_2AM,
        LISBON,
        datetime(2026, 10, 17, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert found == [
        datetime(2026, 10, 18, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
    ]


def test_a_time_in_the_repeated_hour_runs_once_and_one_in_the_skipped_hour_runs_later() -> None:
    autumn = tasks.occurrences(
        "30 1 * * 0", LISBON, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC)
    )
    assert autumn == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 01:30 summer time, once
    spring = tasks.occurrences(
        "30 1 * * 0", LISBON, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)
    )
    assert spring == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]  # 02:30 summer time


def test_staggering_spreads_1000_machines_evenly_over_the_window() -> None:
    occurrence = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    window = timedelta(minutes=60)
    ids = [f"agent-{n:04d}" for n in range(1000)]
    starts = tasks.stagger(ids, occurrence, window, "17")
    assert set(starts) == set(ids)
    assert all(occurrence <= s < occurrence + window for s in starts.values())
    per_minute = Counter(int((s - occurrence).total_seconds() // 60) for s in starts.values())
    assert len(per_minute) == 60
    # 1000 / 60 = 16.7 on average; no minute holds more than 2% of the machines.
    assert max(per_minute.values()) <= 20
    assert min(per_minute.values()) >= 15
    # No two machines start at the same instant, and the plan is the same on every collector.
    assert len(set(starts.values())) == 1000
    assert tasks.stagger(reversed(ids), occurrence, window, "17") == starts
    # Another occurrence (or task) deals the places anew: nobody is always first.
    later = tasks.stagger(ids, occurrence + timedelta(days=7), window, "17")
    first_now = min(starts, key=starts.__getitem__)
    assert min(later, key=later.__getitem__) != first_now


def test_a_run_outcome_comes_from_its_steps() -> None:
    s = DiagnosticState
    assert tasks.outcome_of([]) == tasks.PENDING
    assert tasks.outcome_of([s.DONE, s.SENT]) == tasks.PENDING
    assert tasks.outcome_of([s.DONE, s.DONE]) == tasks.DONE
    assert tasks.outcome_of([s.DONE, s.FAILED]) == tasks.FAILED
    assert tasks.outcome_of([s.REFUSED, s.EXPIRED]) == tasks.FAILED
    assert tasks.outcome_of([s.EXPIRED, s.EXPIRED]) == tasks.MISSED


# --- Store and job, with a fixed clock -----------------------------------------------------------

# The Sunday 2026-11-29 02:00 Lisbon (= UTC in winter) occurrence, and moments around it.
OCCURRENCE = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
BEFORE = OCCURRENCE - timedelta(days=1)
WINDOW_END = OCCURRENCE + timedelta(hours=2)
LAST_INSTANT = WINDOW_END - timedelta(microseconds=1)
"""Every machine's start has come by then, wherever the (random) agent ids put it."""


def vet(action: str, args: dict[str, Any]) -> dict[str, Any]:
    """As the dispatcher vets (without the remediation opt-in: refused)."""
    if actions.is_remediation(action):
        raise DiagnosticError(f"{action} changes the machine and remediation is off")
    return actions.validate(action, args)


@pytest.fixture
def store(store_url: str) -> Any:
    opened = Store(store_url)
    yield opened
    opened.close()


def machines(store: Store, count: int, tags: list[str] | None = None) -> list[str]:
    def work(s: Session) -> list[str]:
        made = [enrolled(s, n, BEFORE).agent_id for n in range(1, count + 1)]
        for agent_id in made:
            s.get_one(Agent, agent_id).tags = list(tags or [])
        return made

    return store.call(work)


def make_task(store: Store, made: tasks.TaskSpec | None = None) -> int:
    return store.call(lambda s: tasks.create(s, made or spec(), "admin", BEFORE).id)


def runs(store: Store) -> list[TaskRun]:
    return store.call(lambda s: list(s.scalars(select(TaskRun).order_by(TaskRun.start_at))))


def steps_of(store: Store, run_id: int) -> list[Diagnostic]:
    return store.call(
        lambda s: list(
            s.scalars(
                select(Diagnostic)
                .where(Diagnostic.task_run_id == run_id)
                .order_by(Diagnostic.requested_at)
            )
        )
    )


def finish(store: Store, run_id: int, *states: DiagnosticState, error: str = "") -> None:
    def work(s: Session) -> None:
        for step, state in zip(
            s.scalars(
                select(Diagnostic)
                .where(Diagnostic.task_run_id == run_id)
                .order_by(Diagnostic.requested_at)
            ),
            states,
            strict=True,
        ):
            step.state = int(state)
            step.error = error if state is DiagnosticState.FAILED else ""

    store.call(work)


def test_each_occurrence_makes_one_staggered_run_per_machine_of_the_target_once(
    store: Store,
) -> None:
    laptops = machines(store, 3, ["laptops"])
    task_id = make_task(store, spec(target=tasks.target(tags=["laptops"])))
    other = store.call(lambda s: enrolled(s, 9, BEFORE).agent_id)
    row = store.call(lambda s: s.get_one(MaintenanceTask, task_id))
    assert row.next_run_at == OCCURRENCE

    assert store.call(lambda s: tasks.schedule_due(s, OCCURRENCE - timedelta(seconds=1))) == 0
    assert store.call(lambda s: tasks.schedule_due(s, OCCURRENCE)) == 3
    made = runs(store)
    assert sorted(r.agent_id for r in made) == sorted(laptops) and other not in laptops
    assert all(r.outcome == tasks.PENDING and r.scheduled_for == OCCURRENCE for r in made)
    assert all(OCCURRENCE <= r.start_at < WINDOW_END == r.window_ends_at for r in made)
    row = store.call(lambda s: s.get_one(MaintenanceTask, task_id))
    assert row.last_run_at == OCCURRENCE
    assert row.next_run_at == OCCURRENCE + timedelta(days=7)

    # Another collector that saw the occurrence as due too creates nothing more.
    def rewind(s: Session) -> None:
        s.get_one(MaintenanceTask, task_id).next_run_at = OCCURRENCE

    store.call(rewind)
    assert store.call(lambda s: tasks.schedule_due(s, OCCURRENCE + timedelta(seconds=5))) == 0
    assert len(runs(store)) == 3


def test_an_occurrence_whose_whole_window_passed_unseen_is_skipped(store: Store) -> None:
    machines(store, 1)
    task_id = make_task(store)
    late = WINDOW_END + timedelta(minutes=1)
    assert store.call(lambda s: tasks.schedule_due(s, late)) == 0
    assert runs(store) == []
    row = store.call(lambda s: s.get_one(MaintenanceTask, task_id))
    assert row.next_run_at == OCCURRENCE + timedelta(days=7)


def test_runs_start_at_their_staggered_time_as_diagnostics_that_end_with_the_window(
    store: Store,
) -> None:
    machines(store, 5)
    make_task(store)
    store.call(lambda s: tasks.schedule_due(s, OCCURRENCE))
    first, *rest = runs(store)

    started = store.call(lambda s: tasks.start_due(s, first.start_at, vet, DESK))
    assert started.started == (first.id,)
    steps = steps_of(store, first.id)
    assert [d.action for d in steps] == ["inventory", "largest_dirs"]
    assert all(d.requested_by == "task:weekly check-up" for d in steps)
    assert all(d.state == DiagnosticState.QUEUED and d.expires_at == WINDOW_END for d in steps)
    assert steps[0].requested_at < steps[1].requested_at  # the machine gets them in order

    # Starting again (this collector or another) queues nothing twice.
    again = store.call(lambda s: tasks.start_due(s, first.start_at, vet, DESK))
    assert again.started == ()
    everyone = store.call(lambda s: tasks.start_due(s, LAST_INSTANT, vet, DESK))
    assert sorted(everyone.started) == sorted(r.id for r in rest)
    total = store.call(lambda s: s.scalar(select(func.count()).select_from(Diagnostic)))
    assert total == 10
    waiting = store.call(lambda s: tasks.waiting_machines(s, OCCURRENCE + timedelta(minutes=1)))
    assert sorted(waiting) == sorted(r.agent_id for r in [first, *rest])


def test_runs_settle_done_failed_with_a_ticket_or_missed(store: Store) -> None:
    machines(store, 3, ["vip"])
    make_task(store)
    store.call(lambda s: tasks.schedule_due(s, OCCURRENCE))
    store.call(lambda s: tasks.start_due(s, LAST_INSTANT, vet, DESK))
    good, bad, away = runs(store)
    finish(store, good.id, DiagnosticState.DONE, DiagnosticState.DONE)
    finish(store, bad.id, DiagnosticState.DONE, DiagnosticState.FAILED, error="disk unreadable")
    at = WINDOW_END - timedelta(seconds=30)

    settled = store.call(lambda s: tasks.settle(s, at, DESK))
    assert settled.done == (good.id,) and settled.failed == (bad.id,) and settled.missed == ()
    (ticket_id,) = settled.tickets
    ticket = store.call(lambda s: s.get_one(Ticket, ticket_id))
    assert ticket.agent_id == bad.agent_id and ticket.check_id == "task:weekly check-up"
    assert ticket.category == Category.SOFTWARE and ticket.severity == Severity.WARNING
    assert ticket.state == TicketState.NEW and ticket.priority == 2  # vip: high impact -> P2
    detail = store.call(lambda s: desk.get_ticket(s, ticket_id))
    assert detail is not None
    assert (
        "step 2 (largest_dirs) failed on the machine: disk unreadable" in detail.events[0].message
    )
    assert sorted(d.row.action for d in detail.diagnostics) == ["inventory", "largest_dirs"]
    assert store.call(lambda s: s.get_one(TaskRun, bad.id)).ticket_id == ticket_id

    # The machine that never came back: its steps expire with the window, the run is missed.
    store.call(lambda s: diagnostics.expire(s, WINDOW_END))
    later = store.call(lambda s: tasks.settle(s, WINDOW_END, DESK))
    assert later.missed == (away.id,) and later.tickets == ()
    outcomes = {r.id: r.outcome for r in runs(store)}
    assert outcomes == {good.id: "done", bad.id: "failed", away.id: "missed"}


def test_a_second_failure_adds_to_the_open_ticket(store: Store) -> None:
    machines(store, 1)
    make_task(store)
    for week in range(2):
        occurrence = OCCURRENCE + timedelta(days=7 * week)
        store.call(lambda s, o=occurrence: tasks.schedule_due(s, o))
        # The last instant of the window: whatever the (random) agent id, its start has come.
        last_instant = occurrence + timedelta(hours=2) - timedelta(microseconds=1)
        store.call(lambda s, t=last_instant: tasks.start_due(s, t, vet, DESK))
        latest = runs(store)[-1]
        finish(store, latest.id, DiagnosticState.FAILED, DiagnosticState.DONE, error="boom")
        store.call(lambda s, o=occurrence: tasks.settle(s, o + timedelta(hours=2), DESK))
    tickets = store.call(lambda s: list(s.scalars(select(Ticket))))
    assert len(tickets) == 1 and tickets[0].failure_count == 2
    assert {r.ticket_id for r in runs(store)} == {tickets[0].id}


def test_a_step_the_collector_refuses_fails_the_run_at_its_start(store: Store) -> None:
    machines(store, 1)
    make_task(store, spec(steps=[("inventory", {}), ("flush_dns_cache", {})]))
    store.call(lambda s: tasks.schedule_due(s, OCCURRENCE))
    started = store.call(lambda s: tasks.start_due(s, LAST_INSTANT, vet, DESK))
    (run,) = runs(store)
    assert started.failed == (run.id,) and run.outcome == "failed" and run.ticket_id
    assert steps_of(store, run.id) == []
    ticket = store.call(lambda s: s.get_one(Ticket, run.ticket_id))
    assert ticket.check_id == "task:weekly check-up"


def test_a_run_never_started_in_its_window_is_missed(store: Store) -> None:
    machines(store, 1)
    make_task(store)
    store.call(lambda s: tasks.schedule_due(s, OCCURRENCE))
    assert store.call(lambda s: tasks.start_due(s, WINDOW_END, vet, DESK)).started == ()
    assert store.call(lambda s: tasks.settle(s, WINDOW_END, DESK)).missed == (runs(store)[0].id,)


def test_history_and_delete(store: Store) -> None:
    machines(store, 2)
    task_id = make_task(store)
    store.call(lambda s: tasks.schedule_due(s, OCCURRENCE))
    store.call(lambda s: tasks.start_due(s, LAST_INSTANT, vet, DESK))
    found = store.call(lambda s: tasks.history(s, task_id))
    assert found is not None
    row, views = found
    assert row.name == "weekly check-up" and len(views) == 2
    assert all(len(v.steps) == 2 and v.hostname.startswith("pc-") for v in views)
    with pytest.raises(tasks.TaskError, match="already exists"):
        make_task(store)
    assert store.call(lambda s: tasks.delete(s, task_id))
    assert not store.call(lambda s: tasks.delete(s, task_id))
    assert store.call(lambda s: tasks.history(s, task_id)) is None
    assert runs(store) == []
    # The diagnostics stay, unlinked.
    assert store.call(lambda s: s.scalar(select(func.count()).select_from(Diagnostic))) == 4


def test_a_task_naming_an_unknown_machine_is_refused(store: Store) -> None:
    with pytest.raises(tasks.TaskError, match="no machine ghost"):
        make_task(store, spec(target=tasks.target(agent_ids=["ghost"])))


# --- RPCs ---------------------------------------------------------------------------------------


def task_message(**overrides: Any) -> console_pb2.MaintenanceTask:
    given: dict[str, Any] = {
        "name": "nightly",
        "steps": [console_pb2.TaskStep(action="inventory")],
        "cron": "0 3 * * *",
        "timezone": LISBON,
        "window_minutes": 60,
        "target": console_pb2.TaskTarget(all_machines=True),
    }
    return console_pb2.MaintenanceTask(**{**given, **overrides})


async def test_task_rpcs(collector: Collector, channel: grpc.aio.Channel) -> None:
    stub = console_pb2_grpc.ConsoleServiceStub(channel)
    made = await stub.CreateTask(console_pb2.CreateTaskRequest(task=task_message()))
    assert made.id and made.created_by == "admin" and made.next_run.seconds > 0
    step = console_pb2.TaskStep(action="largest_dirs")
    step.args.update({"path": "/tmp"})
    second = await stub.CreateTask(
        console_pb2.CreateTaskRequest(task=task_message(name="second", steps=[step]))
    )
    assert second.steps[0].args["path"] == "/tmp"

    listed = await stub.ListTasks(console_pb2.ListTasksRequest(), metadata=as_("alice"))
    assert [t.name for t in listed.tasks] == ["nightly", "second"]
    history = await stub.GetTaskHistory(
        console_pb2.GetTaskHistoryRequest(task_id=made.id), metadata=as_("alice")
    )
    assert history.task.name == "nightly" and list(history.results) == []

    for bad, reason in (
        (task_message(name="nightly"), "already exists"),
        (task_message(name="x", cron="61 * * * *"), "cron"),
        (task_message(name="x", window_minutes=0), "window"),
        (task_message(name="x", steps=[console_pb2.TaskStep(action="rm_rf")]), "unknown action"),
        (task_message(name="x", target=console_pb2.TaskTarget()), "target"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateTask(console_pb2.CreateTaskRequest(task=bad))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert reason in (refused.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.CreateTask(
            console_pb2.CreateTaskRequest(task=task_message(name="mine")), metadata=as_("alice")
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    for call in (
        stub.GetTaskHistory(console_pb2.GetTaskHistoryRequest(task_id=999)),
        stub.DeleteTask(console_pb2.DeleteTaskRequest(task_id=999)),
        stub.DeleteTask(console_pb2.DeleteTaskRequest(task_id=2**64 - 1)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND

    await stub.DeleteTask(console_pb2.DeleteTaskRequest(task_id=made.id))
    listed = await stub.ListTasks(console_pb2.ListTasksRequest())
    assert [t.name for t in listed.tasks] == ["second"]
    audited = collector.store.call(
        lambda s: [
            (e.action, e.target, e.detail, e.outcome)
            for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if e.action in ("CreateTask", "DeleteTask") and e.outcome == "ok"
        ]
    )
    assert audited == [
        ("CreateTask", f"task {made.id}", "nightly", "ok"),
        ("CreateTask", f"task {second.id}", "second", "ok"),
        ("DeleteTask", f"task {made.id}", "", "ok"),
    ]
