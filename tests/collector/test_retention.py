"""collector/retention.py: hourly rollups, pruning by age, evidence kept, idempotent, batched."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector import tasks
from collector.config import TicketSettings
from collector.ingest import ingest_batch
from collector.retention import RetentionOutcome, RetentionSettings, retention_sweep
from collector.store.models import (
    AuditEntry,
    CheckResult,
    CheckRollup,
    CheckState,
    Diagnostic,
    TaskRun,
    Ticket,
)
from collector.store.runner import Store
from remdiag.vocabulary import CheckStatus, DiagnosticState
from tests.collector.factories import DISK, NOW, enrolled, result

RULES = TicketSettings(fails_before_ticket=3).rules()
SETTINGS = RetentionSettings(raw_days=14, rollup_days=400, batch_size=10)
OLD_HOUR = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
"""23 days before NOW: past raw_days."""


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


class Machine:
    def __init__(self, store: Store, n: int = 1) -> None:
        self.store = store
        self.agent_id = store.call(lambda s: enrolled(s, n)).agent_id
        self.sequence = 0

    def send(
        self, status: CheckStatus, observed_at: datetime, used: float = 50.0, check_id: str = DISK
    ) -> int:
        """One result in its own batch, received a minute after it was observed; its id."""
        self.sequence += 1
        sequence = self.sequence
        incoming = result(status, check_id, observed_at)._replace(
            values=[
                {"name": "used_percent", "value": used, "unit": "%"},
                {"name": "filesystem", "value": "/", "unit": ""},
            ],
        )
        received = observed_at + timedelta(minutes=1)
        self.store.call(
            lambda s: ingest_batch(s, self.agent_id, sequence, [incoming], RULES, received)
        )
        newest = self.store.call(lambda s: s.scalar(select(func.max(CheckResult.id))))
        assert newest is not None
        return int(newest)


def raw_ids(store: Store) -> set[int]:
    return store.call(lambda s: set(s.scalars(select(CheckResult.id))))


def rollups(store: Store) -> list[CheckRollup]:
    query = select(CheckRollup).order_by(CheckRollup.check_id, CheckRollup.hour)
    return store.call(lambda s: list(s.scalars(query)))


def sweep(
    store: Store, now: datetime = NOW, settings: RetentionSettings = SETTINGS
) -> RetentionOutcome:
    return asyncio.run(retention_sweep(store, settings, now))


def test_old_results_become_one_rollup_per_hour_and_recent_ones_stay_raw(store: Store) -> None:
    pc = Machine(store)
    for minute, used, status in ((5, 40.0, CheckStatus.OK), (20, 60.0, CheckStatus.WARNING)):
        pc.send(status, OLD_HOUR + timedelta(minutes=minute), used)
    pc.send(CheckStatus.OK, OLD_HOUR + timedelta(minutes=50), 50.0)
    pc.send(CheckStatus.UNKNOWN, OLD_HOUR + timedelta(hours=1, minutes=1), 70.0)
    recent = pc.send(CheckStatus.OK, NOW - timedelta(days=1))
    latest_failure = pc.send(CheckStatus.WARNING, NOW - timedelta(hours=1))  # not the old one

    outcome = sweep(store)

    assert raw_ids(store) == {recent, latest_failure}
    assert outcome.rolled_up == 4
    first, second = rollups(store)
    assert (first.hour, first.check_id, first.agent_id) == (OLD_HOUR, DISK, pc.agent_id)
    assert (first.ok_count, first.warning_count, first.critical_count, first.unknown_count) == (
        2,
        1,
        0,
        0,
    )
    assert first.first_observed_at == OLD_HOUR + timedelta(minutes=5)
    assert first.last_observed_at == OLD_HOUR + timedelta(minutes=50)
    assert first.last_status == int(CheckStatus.OK)
    stats = first.values["used_percent"]
    assert (stats["min"], stats["max"], stats["sum"] / stats["count"]) == (40.0, 60.0, 50.0)
    assert stats["unit"] == "%"
    assert "filesystem" not in first.values  # text values are not rolled up
    assert second.hour == OLD_HOUR + timedelta(hours=1)
    assert (second.unknown_count, second.last_status) == (1, int(CheckStatus.UNKNOWN))


def test_a_second_sweep_changes_nothing(store: Store) -> None:
    pc = Machine(store)
    for minute in range(0, 60, 2):  # 30 results: three batches of 10
        pc.send(CheckStatus.OK, OLD_HOUR + timedelta(minutes=minute), float(minute))
    sweep(store)
    before = [(r.id, r.ok_count, r.values) for r in rollups(store)]

    outcome = sweep(store)

    assert outcome.rolled_up == 0
    assert [(r.id, r.ok_count, r.values) for r in rollups(store)] == before
    assert before[0][1] == 30
    assert before[0][2]["used_percent"]["sum"] == sum(range(0, 60, 2))


def test_a_late_result_for_a_rolled_up_hour_is_added_to_it(store: Store) -> None:
    pc = Machine(store)
    pc.send(CheckStatus.OK, OLD_HOUR + timedelta(minutes=30), 30.0)
    sweep(store)
    pc.send(CheckStatus.UNKNOWN, OLD_HOUR + timedelta(minutes=10), 90.0)  # spooled, sent late

    sweep(store)

    (rollup,) = rollups(store)
    assert (rollup.ok_count, rollup.unknown_count) == (1, 1)
    assert rollup.first_observed_at == OLD_HOUR + timedelta(minutes=10)
    assert (rollup.last_observed_at, rollup.last_status) == (
        OLD_HOUR + timedelta(minutes=30),
        int(CheckStatus.OK),
    )
    assert rollup.values["used_percent"]["max"] == 90.0
    assert raw_ids(store) == set()


def test_a_tickets_evidence_and_a_checks_last_failure_are_never_pruned(store: Store) -> None:
    pc = Machine(store)
    first = pc.send(CheckStatus.CRITICAL, OLD_HOUR)
    pc.send(CheckStatus.CRITICAL, OLD_HOUR + timedelta(minutes=5))
    evidence = pc.send(CheckStatus.CRITICAL, OLD_HOUR + timedelta(minutes=10))
    last_failure = pc.send(CheckStatus.WARNING, OLD_HOUR + timedelta(minutes=15), check_id="x.y")
    ticket = store.call(lambda s: s.scalars(select(Ticket)).one())
    assert ticket.evidence_result_id == evidence
    state = store.call(lambda s: s.get(CheckState, (pc.agent_id, "x.y")))
    assert state is not None and state.last_failure_id == last_failure

    outcome = sweep(store, NOW + timedelta(days=30))

    assert raw_ids(store) == {evidence, last_failure}
    assert first not in raw_ids(store)
    assert outcome.kept_as_evidence == 2
    (disk,) = [r for r in rollups(store) if r.check_id == DISK]
    assert disk.critical_count == 2  # the evidence joins its hour once it is let go
    assert sweep(store, NOW + timedelta(days=31)) is not None
    assert raw_ids(store) == {evidence, last_failure}


def test_rollups_diagnostics_and_audit_go_after_their_own_days(store: Store) -> None:
    pc = Machine(store)
    pc.send(CheckStatus.OK, OLD_HOUR)
    later = OLD_HOUR + timedelta(days=30)
    pc.send(CheckStatus.OK, later)

    def rows(session: Session) -> None:
        for days, state in ((100, DiagnosticState.DONE), (10, DiagnosticState.FAILED)):
            session.add_all(
                [
                    Diagnostic(
                        id=f"d-{days}",
                        agent_id=pc.agent_id,
                        action="top_processes",
                        args={},
                        state=int(state),
                        requested_by="alice",
                        requested_at=NOW - timedelta(days=days),
                        expires_at=NOW - timedelta(days=days) + timedelta(hours=1),
                        finished_at=NOW - timedelta(days=days),
                    ),
                    AuditEntry(
                        at=NOW - timedelta(days=days * 4),
                        actor="alice",
                        role="technician",
                        action="UpdateTicket",
                        target="ticket 1",
                        outcome="ok",
                        detail="",
                    ),
                ]
            )
        session.add(
            Diagnostic(
                id="d-queued",
                agent_id=pc.agent_id,
                action="top_processes",
                args={},
                state=int(DiagnosticState.QUEUED),
                requested_by="alice",
                requested_at=NOW - timedelta(days=200),
                expires_at=NOW + timedelta(days=1),
            )
        )

    store.call(rows)
    sweep(store, later + timedelta(days=15))
    assert [r.hour for r in rollups(store)] == [OLD_HOUR, later]
    assert store.call(lambda s: sorted(s.scalars(select(Diagnostic.id)))) == ["d-10", "d-queued"]
    assert store.call(lambda s: len(list(s.scalars(select(AuditEntry.id))))) == 1

    sweep(store, OLD_HOUR + timedelta(days=401))

    assert [r.hour for r in rollups(store)] == [later]


def test_finished_task_runs_go_after_their_days_and_pending_ones_stay(store: Store) -> None:
    pc = Machine(store)
    spec = tasks.task(
        name="weekly check-up",
        steps=[("inventory", {})],
        cron="0 2 * * 0",
        timezone="UTC",
        window_minutes=120,
        target=tasks.target(all_machines=True),
    )
    task_id = store.call(lambda s: tasks.create(s, spec, "admin", NOW - timedelta(days=800)).id)

    def run(days_ago: int, outcome: str) -> TaskRun:
        at = NOW - timedelta(days=days_ago)
        return TaskRun(
            task_id=task_id,
            agent_id=pc.agent_id,
            scheduled_for=at,
            start_at=at,
            window_ends_at=at + timedelta(hours=2),
            outcome=outcome,
        )

    store.call(
        lambda s: s.add_all(
            [
                run(400, tasks.DONE),
                run(380, tasks.MISSED),
                run(370, tasks.PENDING),
                run(300, tasks.FAILED),
            ]
        )
    )
    outcome = sweep(store)
    left = store.call(lambda s: [(r.outcome, r.scheduled_for) for r in s.scalars(select(TaskRun))])
    assert outcome.task_runs_pruned == 2
    assert sorted(left) == [
        (tasks.FAILED, NOW - timedelta(days=300)),
        (tasks.PENDING, NOW - timedelta(days=370)),
    ]


def test_disabled_retention_keeps_everything(store: Store) -> None:
    pc = Machine(store)
    kept = pc.send(CheckStatus.OK, OLD_HOUR)
    sweep(store, settings=RetentionSettings(enabled=False))
    assert raw_ids(store) == {kept}


def test_two_collectors_sweeping_at_once_count_each_result_once(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("several collectors share PostgreSQL, not a SQLite file")
    first, second = Store(store_url), Store(store_url)
    try:
        machines = [Machine(first, n) for n in range(1, 5)]
        for pc in machines:
            for minute in range(60):
                pc.send(CheckStatus.OK, OLD_HOUR + timedelta(minutes=minute), float(minute))

        async def both() -> None:
            await asyncio.gather(
                retention_sweep(first, SETTINGS, NOW), retention_sweep(second, SETTINGS, NOW)
            )

        asyncio.run(both())

        assert raw_ids(first) == set()
        found = rollups(first)
        assert len(found) == 4
        assert all(r.ok_count == 60 for r in found)
        assert all(r.values["used_percent"]["sum"] == sum(range(60)) for r in found)
    finally:
        first.close()
        second.close()
