"""The service desk end to end, with a real agent, real gRPC and the collector's own sweep:
failing check -> ticket with its priority and tier -> deadline passes -> next tier -> machine
recovers -> auto-resolved; then a maintenance window keeps the next failures from opening one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from agent.app import Agent
from agent.config import AgentSettings
from collector.client import ConsoleClient
from collector.config import CollectorSettings, TicketSettings
from collector.server import Collector, serve
from collector.store.models import CheckResult
from collector.triage import DEFAULT_SLA, DeskSettings, SlaSettings
from remdiag.v1 import console_pb2
from remdiag.vocabulary import CheckStatus, Priority, TicketState, Tier
from tests.collector.conftest import add_people, token_of
from tests.e2e.test_end_to_end import DISK, MUST_FAIL, MUST_PASS, disk_check, running_agent
from tests.support import LOOPBACK_CHECKS, eventually

# A first response is due 3 s after opening, so the sweep (every second) sees it missed.
FAST_SLA = {p: SlaSettings(respond_minutes=0.05, resolve_minutes=60) for p in DEFAULT_SLA}


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            tickets=TicketSettings(fails_before_ticket=3, passes_before_resolve=2),
            desk=DeskSettings(sweep_seconds=1, sla=FAST_SLA),
        )
    )
    await running.store.run(add_people)
    yield running
    await running.stop()


@contextlib.asynccontextmanager
async def console(collector: Collector) -> AsyncIterator[ConsoleClient]:
    with ConsoleClient(f"127.0.0.1:{collector.port}", token_of("admin")) as client:
        yield client


async def ticket_where(
    client: ConsoleClient, what: str, test: Callable[[console_pb2.Ticket], bool]
) -> console_pb2.Ticket:
    async def probe() -> console_pb2.Ticket | None:
        found = await asyncio.to_thread(client.list_tickets)
        return next((t for t in found if t.check_id == DISK and test(t)), None)

    return await eventually(probe, what)


async def test_ticket_escalates_on_a_missed_deadline_resolves_and_a_window_keeps_quiet(
    collector: Collector, tmp_path: Path
) -> None:
    settings = AgentSettings(
        collector=f"127.0.0.1:{collector.port}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks={**LOOPBACK_CHECKS, DISK: disk_check(tmp_path, **MUST_FAIL)},
    )
    async with console(collector) as client, running_agent(Agent(settings)) as agent:
        opened = await ticket_where(client, "a disk ticket", lambda t: True)
        # Critical (high urgency) on a machine without tags (medium impact): P2; hardware: L1.
        assert (opened.priority, opened.tier) == (Priority.P2, Tier.L1)
        assert opened.state == TicketState.NEW

        late = await ticket_where(client, "the escalation", lambda t: t.tier == Tier.L2)
        assert late.breached and late.id == opened.id
        detail = await asyncio.to_thread(client.get_ticket, opened.id)
        breach = next(e for e in detail.events if e.kind == "breached")
        assert "missed its response deadline" in breach.message and "L1 -> L2" in breach.message

        agent.set_local_checks({**LOOPBACK_CHECKS, DISK: disk_check(tmp_path, **MUST_PASS)})
        resolved = await ticket_where(
            client, "the ticket to resolve", lambda t: t.state == TicketState.RESOLVED
        )
        assert resolved.resolved_by == "system" and resolved.tier == Tier.L2

        # A window over every machine: failures are stored, no ticket opens or reopens.
        start = Timestamp()
        start.FromDatetime(datetime.now(UTC))
        window = await asyncio.to_thread(
            client.create_window,
            console_pb2.MaintenanceWindow(
                name="patching", starts_at=start, duration_minutes=60, all_machines=True
            ),
            "alice",
        )
        assert window.active
        failures_before = count_failures(collector)
        agent.set_local_checks({**LOOPBACK_CHECKS, DISK: disk_check(tmp_path, **MUST_FAIL)})
        await eventually(
            lambda: asyncio.to_thread(lambda: count_failures(collector) >= failures_before + 6),
            "failing results inside the window",
        )
        tickets = await asyncio.to_thread(client.list_tickets)
        assert [(t.id, t.state) for t in tickets if t.check_id == DISK] == [
            (opened.id, TicketState.RESOLVED)
        ]

        # The window goes: the still-failing check reopens its recently resolved ticket.
        await asyncio.to_thread(client.delete_window, window.id)
        reopened = await ticket_where(
            client, "the ticket to reopen", lambda t: t.state == TicketState.REOPENED
        )
        assert reopened.id == opened.id and reopened.reopen_count == 1


def count_failures(collector: Collector) -> int:
    return collector.store.call(
        lambda s: (
            s.scalar(
                select(func.count())
                .select_from(CheckResult)
                .where(
                    CheckResult.check_id == DISK, CheckResult.status == int(CheckStatus.CRITICAL)
                )
            )
            or 0
        )
    )
