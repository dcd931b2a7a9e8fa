"""Offline tickets (collector/offline.py) on SQLite and PostgreSQL, with a controlled clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from collector import fleet, windows
from collector.offline import OFFLINE_CHECK, is_silent, sweep_offline
from collector.store.models import Ticket, TicketEvent
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.vocabulary import Category, Priority, TicketState
from tests.collector.factories import NOW, enrolled

DESK = DeskSettings(offline_after_seconds=3600, offline_after_by_tag={"server": 600})
REOPEN = timedelta(hours=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def agent_id(store: Store) -> str:
    enrolled_id: str = store.call(lambda s: enrolled(s)).agent_id
    store.call(lambda s: fleet.heartbeat(s, enrolled_id, NOW))
    return enrolled_id


def sweep(store: Store, minutes: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    outcome = store.call(lambda s: sweep_offline(s, NOW + timedelta(minutes=minutes), DESK, REOPEN))
    return outcome.opened, outcome.resolved


def offline_tickets(store: Store) -> list[Ticket]:
    query = select(Ticket).where(Ticket.check_id == OFFLINE_CHECK).order_by(Ticket.id)
    return store.call(lambda s: list(s.scalars(query)))


def test_silence_is_judged_by_the_machines_tags() -> None:
    assert not is_silent(NOW, [], NOW + timedelta(minutes=60), DESK)
    assert is_silent(NOW, [], NOW + timedelta(minutes=61), DESK)
    assert is_silent(NOW, ["laptop", "server"], NOW + timedelta(minutes=11), DESK)
    assert not is_silent(NOW, ["server"], NOW + timedelta(minutes=9), DESK)


def test_a_silent_machine_gets_one_offline_ticket_resolved_when_it_returns(
    store: Store, agent_id: str
) -> None:
    assert sweep(store, 59) == ((), ())
    opened, _ = sweep(store, 61)
    (ticket,) = offline_tickets(store)
    assert opened == (ticket.id,)
    assert ticket.state == TicketState.NEW and ticket.category == Category.NETWORK
    assert ticket.priority == Priority.P3 and ticket.title.endswith("is offline")
    assert sweep(store, 90) == ((), ())  # still one ticket

    store.call(lambda s: fleet.heartbeat(s, agent_id, NOW + timedelta(minutes=95)))
    assert sweep(store, 96) == ((), (ticket.id,))
    (ticket,) = offline_tickets(store)
    assert ticket.state == TicketState.RESOLVED and ticket.resolved_by == "system"
    messages = store.call(
        lambda s: list(
            s.scalars(select(TicketEvent.message).where(TicketEvent.ticket_id == ticket.id))
        )
    )
    assert messages[0].startswith("no word from the machine since 2026-11-24 09:00 UTC")
    assert messages[1].startswith("back online")


def test_going_silent_again_soon_reopens_the_offline_ticket(store: Store, agent_id: str) -> None:
    sweep(store, 61)
    store.call(lambda s: fleet.heartbeat(s, agent_id, NOW + timedelta(minutes=70)))
    sweep(store, 71)
    opened, _ = sweep(store, 131)  # an hour after: within the reopen window of the resolution
    (ticket,) = offline_tickets(store)
    assert opened == (ticket.id,)
    assert ticket.state == TicketState.REOPENED and ticket.reopen_count == 1


def test_no_offline_ticket_inside_a_maintenance_window_or_for_a_revoked_machine(
    store: Store, agent_id: str
) -> None:
    spec = windows.window(
        name="reboots", starts_at=NOW, duration=timedelta(hours=2), agent_ids=[agent_id]
    )
    store.call(lambda s: windows.create(s, spec, "alice", NOW))
    assert sweep(store, 61) == ((), ())
    opened, _ = sweep(store, 121)  # the window is over
    assert len(opened) == 1

    other = store.call(lambda s: enrolled(s, 2)).agent_id
    store.call(lambda s: fleet.revoke(s, other, NOW))
    assert sweep(store, 60 * 24) == ((), ())
    assert {t.agent_id for t in offline_tickets(store)} == {agent_id}


def test_a_server_goes_offline_sooner(store: Store, agent_id: str) -> None:
    store.call(lambda s: fleet.tag(s, agent_id, ["server"], []))
    opened, _ = sweep(store, 11)
    assert len(opened) == 1
    (ticket,) = offline_tickets(store)
    assert ticket.priority == Priority.P2  # warning urgency x server (high impact)


def test_many_machines_silent_at_once_each_get_their_ticket_across_load_chunks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("collector.offline.LOAD_CHUNK", 2)
    agents = {store.call(lambda s, n=n: enrolled(s, n)).agent_id for n in range(1, 6)}
    for agent in agents:
        store.call(lambda s, a=agent: fleet.heartbeat(s, a, NOW))
    opened, _ = sweep(store, 61)
    assert len(opened) == 5
    assert {t.agent_id for t in offline_tickets(store)} == agents
