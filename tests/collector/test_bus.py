"""collector/bus.py: one job round per database at a time, and requests queued elsewhere reach
the stream held here, also after the listening connection was cut."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import text

from collector import bus, diagnostics
from collector.actions import DiagnosticsPolicy
from collector.dispatch import DiagnosticHub, Dispatcher
from collector.store.runner import Store
from remdiag.v1 import agent_pb2, common_pb2
from tests.collector.factories import enrolled
from tests.support import eventually


def test_a_job_runs_in_one_transaction_at_a_time(store_url: str) -> None:
    store = Store(store_url)
    try:
        with store.sessions.begin() as first:
            assert bus.run_once(first, "desk-sweep")
            with store.sessions.begin() as second:
                postgres = store.engine.dialect.name == "postgresql"
                # Another collector skips the round while the first holds it; SQLite: one process.
                assert bus.run_once(second, "desk-sweep") is not postgres
                assert bus.run_once(second, "recurring-tickets")
        with store.sessions.begin() as later:
            assert bus.run_once(later, "desk-sweep")  # released at commit
    finally:
        store.close()


@contextlib.asynccontextmanager
async def listening(store: Store, hub: DiagnosticHub) -> AsyncIterator[bus.Bus]:
    listener = bus.Bus(store, Dispatcher(store, DiagnosticsPolicy(), hub))
    task = asyncio.create_task(listener.run())

    async def connected() -> int | None:
        return listener.backend_pid

    try:
        await eventually(connected, "the bus to listen", 30)
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_request_queued_elsewhere_reaches_the_stream_held_here(postgres_url: str) -> None:
    here, elsewhere = Store(postgres_url), Store(postgres_url)
    agent_id = here.call(lambda s: enrolled(s)).agent_id
    hub = DiagnosticHub()
    outgoing: asyncio.Queue[agent_pb2.CollectorMessage] = asyncio.Queue()
    hub.attach(agent_id, outgoing)
    other = Dispatcher(elsewhere, DiagnosticsPolicy(), DiagnosticHub())  # holds no stream
    try:
        async with listening(here, hub) as listener:
            first = await other.submit(agent_id, "inventory", {}, "alice")
            sent = await asyncio.wait_for(outgoing.get(), 30)
            assert sent.diagnostic.request_id == first.row.id

            # Cut the listening connection: it comes back and sends what was queued meanwhile.
            cut = listener.backend_pid
            await elsewhere.run(
                lambda s: s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": cut})
            )
            second = await other.submit(agent_id, "inventory", {}, "alice")
            sent = await asyncio.wait_for(outgoing.get(), 60)
            assert sent.diagnostic.request_id == second.row.id
            assert listener.backend_pid != cut
    finally:
        await asyncio.gather(asyncio.to_thread(here.close), asyncio.to_thread(elsewhere.close))


async def test_watchers_here_see_what_another_collector_recorded(postgres_url: str) -> None:
    store = Store(postgres_url)
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    hub = DiagnosticHub()
    try:
        async with listening(store, hub):
            asked = Dispatcher(store, DiagnosticsPolicy(), hub)
            changes = asked.run(agent_id, "inventory", {}, "alice")
            queued = await anext(changes)
            # Another collector sends it and records the agent's answer; nobody here holds it.
            now = datetime.now(UTC)
            claimed = await store.run(lambda s: diagnostics.claim(s, queued.row.id, now))
            assert claimed is not None
            sent = await asyncio.wait_for(anext(changes), 30)
            assert sent.row.id == queued.row.id and sent.row.sent_at is not None
            await changes.aclose()
    finally:
        await asyncio.to_thread(store.close)


async def test_a_policy_changed_elsewhere_is_sent_on_the_stream_held_here(
    postgres_url: str,
) -> None:
    here, elsewhere = Store(postgres_url), Store(postgres_url)
    agent_id = here.call(lambda s: enrolled(s)).agent_id
    hub = DiagnosticHub()
    outgoing: asyncio.Queue[agent_pb2.CollectorMessage] = asyncio.Queue()
    hub.attach(agent_id, outgoing)
    other = Dispatcher(elsewhere, DiagnosticsPolicy(), DiagnosticHub())  # holds no stream
    try:
        async with listening(here, hub):
            await other.push_policies([(agent_id, common_pb2.Policy(version=1))])
            sent = await asyncio.wait_for(outgoing.get(), 30)
            # The holder sends the machine's policy as stored, not the announcer's copy.
            assert sent.HasField("policy")
    finally:
        await asyncio.gather(asyncio.to_thread(here.close), asyncio.to_thread(elsewhere.close))
