"""The whole path: a real agent's failing disk check -> gRPC stream -> collector -> one ticket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent.app import Agent
from agent.config import AgentSettings
from collector.config import CollectorSettings, TicketSettings
from collector.server import Collector, serve
from collector.store.models import AgentInventory, CheckResult, Ticket, TicketEvent
from remdiag.vocabulary import CheckStatus, TicketState
from tests.support import LOOPBACK_CHECKS, eventually

FAILS_BEFORE_TICKET = 3
PASSES_BEFORE_RESOLVE = 2
DISK = "disk.free_space"


def disk_check(tmp_path: Path, **thresholds: Any) -> dict[str, Any]:
    return {"interval_seconds": 1, "thresholds": {"paths": [str(tmp_path)], **thresholds}}


# Any filesystem with something on it is over 0% used: this fails on real data.
MUST_FAIL = {"max_used_percent_warning": 0, "max_used_percent_critical": 0}
MUST_PASS = {
    "max_used_percent_warning": 100,
    "max_used_percent_critical": 100,
    "min_free_gib_warning": 0,
    "min_free_gib_critical": 0,
}


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            tickets=TicketSettings(
                fails_before_ticket=FAILS_BEFORE_TICKET,
                passes_before_resolve=PASSES_BEFORE_RESOLVE,
            ),
        )
    )
    yield running
    await running.stop()


@contextlib.asynccontextmanager
async def running_agent(agent: Agent) -> AsyncIterator[Agent]:
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_failing_check_opens_one_ticket_and_passing_resolves_it(
    collector: Collector, tmp_path: Path
) -> None:
    settings = AgentSettings(
        collector=f"127.0.0.1:{collector.port}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks={**LOOPBACK_CHECKS, DISK: disk_check(tmp_path, **MUST_FAIL)},
    )
    store = collector.store

    def disk_tickets() -> list[Ticket]:
        return store.call(lambda s: list(s.scalars(select(Ticket).where(Ticket.check_id == DISK))))

    def disk_results(status: CheckStatus) -> int:
        return store.call(
            lambda s: (
                s.scalar(
                    select(func.count())
                    .select_from(CheckResult)
                    .where(CheckResult.check_id == DISK, CheckResult.status == int(status))
                )
                or 0
            )
        )

    async with running_agent(Agent(settings)) as agent:
        opened = await eventually(lambda: asyncio.to_thread(disk_tickets), "a disk ticket")
        assert len(opened) == 1
        assert disk_results(CheckStatus.CRITICAL) >= FAILS_BEFORE_TICKET
        # The inventory came with the connection.
        inventory = store.call(lambda s: s.get(AgentInventory, opened[0].agent_id).facts)  # type: ignore[union-attr]
        assert inventory is not None
        assert {"machine", "cpu", "memory", "disks", "interfaces"} <= set(inventory)
        assert inventory["machine"]["hostname"] == agent.machine.hostname

        # Keep failing: the same ticket counts the failures, no second one opens.
        await eventually(
            lambda: asyncio.to_thread(
                lambda: [t for t in disk_tickets() if t.failure_count >= FAILS_BEFORE_TICKET + 3]
            ),
            "further failures on the open ticket",
        )
        tickets = disk_tickets()
        assert len(tickets) == 1
        assert tickets[0].state == TicketState.NEW

        # Thresholds that let the same filesystem pass: the ticket resolves itself.
        agent.set_local_checks({**LOOPBACK_CHECKS, DISK: disk_check(tmp_path, **MUST_PASS)})
        await eventually(
            lambda: asyncio.to_thread(lambda: [t for t in disk_tickets() if t.resolved_at]),
            "the ticket to resolve",
        )

    (ticket,) = disk_tickets()
    assert ticket.state == TicketState.RESOLVED
    passes_before_resolved = store.call(
        lambda s: s.scalar(
            select(func.count())
            .select_from(CheckResult)
            .where(
                CheckResult.check_id == DISK,
                CheckResult.status == int(CheckStatus.OK),
                CheckResult.received_at <= ticket.resolved_at,
            )
        )
    )
    assert passes_before_resolved == PASSES_BEFORE_RESOLVE
    events = store.call(
        lambda s: list(
            s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
        )
    )
    assert [e.kind for e in events] == ["opened", "resolved"]
    assert "resolved automatically" in events[-1].message
    assert all(e.actor == "system" for e in events)
