"""The SLA sweep on SQLite and PostgreSQL: a ticket past its deadlines is marked and escalated
once per deadline, with events; and the collector's job does it on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from collector import desk, windows
from collector.config import CollectorSettings
from collector.engine import TicketRules
from collector.ingest import ingest_batch
from collector.server import serve
from collector.store.models import Ticket, TicketEvent
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.vocabulary import CheckStatus, Tier
from tests.collector.factories import NOW, enrolled, result
from tests.support import eventually


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def open_ticket(store: Store) -> int:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    for sequence in (1, 2, 3):
        store.call(
            lambda s, q=sequence: ingest_batch(
                s, agent_id, q, [result(CheckStatus.CRITICAL)], TicketRules(), NOW
            )
        )
    ticket_id: int = store.call(lambda s: s.scalars(select(Ticket.id)).one())
    return ticket_id


def test_missed_deadlines_escalate_once_each(store: Store) -> None:
    ticket_id = open_ticket(store)  # P2: respond within 1 h, resolve within 8 h, starts at L1
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(minutes=30))) == []

    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=2))) == [ticket_id]
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=3))) == []
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=9))) == [ticket_id]

    ticket = store.call(lambda s: s.get(Ticket, ticket_id))
    assert ticket is not None and ticket.tier == Tier.L3
    assert ticket.response_breached_at is not None and ticket.resolution_breached_at is not None
    events = store.call(
        lambda s: list(s.scalars(select(TicketEvent.message).where(TicketEvent.kind == "breached")))
    )
    assert len(events) == 2
    assert "response deadline" in events[0] and "L1 -> L2" in events[0]
    assert "resolution deadline" in events[1] and "L2 -> L3" in events[1]


async def test_the_collectors_job_sweeps_by_itself(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'collector.db'}")
    ticket_id = open_ticket(store)  # opened at NOW, which lies in the past: already late
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=store.url,
            desk=DeskSettings(sweep_seconds=1),
        ),
        store=store,
    )
    try:

        async def escalated() -> Ticket | None:
            ticket = await store.run(lambda s: s.get(Ticket, ticket_id))
            # NOW is in the past: at least the first-response deadline has been missed.
            if ticket is None or ticket.response_breached_at is None:
                return None
            return ticket if ticket.tier >= Tier.L2 else None

        await eventually(escalated, "the job to escalate the late ticket")
    finally:
        await running.stop()


def make_window(store: Store, start_minutes: int, hours: int = 2) -> int:
    spec = windows.window(
        name="patch night",
        starts_at=NOW + timedelta(minutes=start_minutes),
        duration=timedelta(hours=hours),
        all_machines=True,
    )
    window_id: int = store.call(lambda s: windows.create(s, spec, "alice", NOW).id)
    return window_id


def test_a_window_pauses_the_sla_clocks_and_moves_the_deadlines_on(store: Store) -> None:
    ticket_id = open_ticket(store)  # P2: respond by NOW+1h, resolve by NOW+8h
    make_window(store, start_minutes=30, hours=2)  # NOW+30m .. NOW+2h30m
    before = store.call(lambda s: s.get(Ticket, ticket_id))
    assert before is not None and before.respond_by == NOW + timedelta(hours=1)

    assert store.call(lambda s: desk.pause_clocks(s, NOW + timedelta(minutes=31))) == (
        [ticket_id],
        [],
    )
    # Paused: the response deadline passes unnoticed, and a second pass pauses nothing again.
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=2))) == []
    assert store.call(lambda s: desk.pause_clocks(s, NOW + timedelta(hours=2))) == ([], [])

    resumed_at = NOW + timedelta(minutes=151)
    assert store.call(lambda s: desk.pause_clocks(s, resumed_at)) == ([], [ticket_id])
    after = store.call(lambda s: s.get(Ticket, ticket_id))
    assert after is not None and after.sla_paused_at is None
    held = timedelta(minutes=120)  # 31 min .. 151 min
    assert after.respond_by == NOW + timedelta(hours=1) + held
    assert after.resolve_by == NOW + timedelta(hours=8) + held
    kinds = store.call(
        lambda s: list(
            s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id))
        )
    )
    assert kinds[-2:] == ["sla_paused", "sla_resumed"]
    # The moved deadline counts from here on.
    assert store.call(lambda s: desk.sweep(s, resumed_at + timedelta(minutes=1))) == []
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=3, minutes=1))) == [ticket_id]


def test_a_window_for_other_machines_pauses_nothing(store: Store) -> None:
    ticket_id = open_ticket(store)
    spec = windows.window(
        name="servers", starts_at=NOW, duration=timedelta(hours=2), tags=["server"]
    )
    store.call(lambda s: windows.create(s, spec, "alice", NOW))
    assert store.call(lambda s: desk.pause_clocks(s, NOW + timedelta(minutes=1))) == ([], [])
    assert store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=2))) == [ticket_id]
