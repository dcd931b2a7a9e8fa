"""Diagnostics end to end: a technician's request over the console reaches a real agent's
stream and comes back; an offline machine gets it when it returns, or it expires; the agent
refuses what it does not know; auto-triage attaches diagnostics to a ticket a real failing check
opened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.app import Agent
from agent.config import AgentSettings
from agent.diagnostics.history import HISTORY_FILE, History
from collector import console_tokens
from collector.actions import DiagnosticsPolicy, TriageStep
from collector.client import ConsoleClient, ConsoleError
from collector.config import CollectorSettings, TicketSettings
from collector.convert import dict_to_struct
from collector.diagnostics import request
from collector.server import Collector, serve
from remdiag.v1 import console_pb2
from remdiag.vocabulary import DiagnosticState
from tests.collector.factories import enrolled
from tests.e2e.test_end_to_end import DISK, MUST_FAIL, disk_check, running_agent
from tests.support import LOOPBACK_CHECKS, eventually


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "file").write_bytes(b"x" * 200_000)
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            tickets=TicketSettings(fails_before_ticket=2, passes_before_resolve=2),
            diagnostics=DiagnosticsPolicy(
                triage={DISK: [TriageStep(action="largest_dirs", args={"path": str(tmp_path)})]}
            ),
        )
    )
    yield running
    await running.stop()


def agent_settings(collector: Collector, tmp_path: Path, **checks: object) -> AgentSettings:
    return AgentSettings(
        collector=f"127.0.0.1:{collector.port}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks={**LOOPBACK_CHECKS, **checks},  # type: ignore[dict-item]
    )


def console(collector: Collector, name: str = "alice") -> ConsoleClient:
    made = collector.store.call(
        lambda s: console_tokens.create(s, datetime.now(UTC), name, console_tokens.Role.TECHNICIAN)
    )
    return ConsoleClient(f"127.0.0.1:{collector.port}", made.secret)


def run(
    client: ConsoleClient, machine: str, action: str, **args: object
) -> list[console_pb2.Diagnostic]:
    request_ = console_pb2.RunDiagnosticRequest(
        agent_id=machine, action=action, args=dict_to_struct(dict(args))
    )
    return list(client.run_diagnostic(request_, 60))


async def connected_agent_id(client: ConsoleClient) -> str:
    async def probe() -> str | None:
        agents = await asyncio.to_thread(client.list_agents)
        return next((a.agent_id for a in agents if a.connected), None)

    return await eventually(probe, "the agent to connect")


async def test_a_diagnostic_round_trip_on_a_live_agent(
    collector: Collector, tmp_path: Path
) -> None:
    with console(collector) as client:
        async with running_agent(Agent(agent_settings(collector, tmp_path))):
            agent_id = await connected_agent_id(client)
            changes = await asyncio.to_thread(
                run, client, agent_id, "largest_dirs", path=str(tmp_path)
            )
    states = [DiagnosticState(c.state) for c in changes]
    assert states[0] is DiagnosticState.QUEUED and states[-1] is DiagnosticState.DONE
    assert DiagnosticState.SENT in states
    done = changes[-1]
    assert done.requested_by == "alice" and done.finished_at.seconds > 0
    assert "big" in str(done.output)

    # The machine's own record names who asked.
    history = History(tmp_path / "agent" / HISTORY_FILE)
    try:
        rows = history.rows()
    finally:
        history.close()
    assert [(h.requested_by, h.action) for h in rows] == [("alice", "largest_dirs")]


async def test_bad_requests_are_refused_before_they_are_queued(collector: Collector) -> None:
    with console(collector) as client:
        with pytest.raises(ConsoleError, match="no machine 'ghost'"):
            await asyncio.to_thread(run, client, "ghost", "inventory")
        agent_id = collector.store.call(lambda s: enrolled(s)).agent_id
        with pytest.raises(ConsoleError, match="unknown action"):
            await asyncio.to_thread(run, client, agent_id, "rm_rf")
        with pytest.raises(ConsoleError, match="path"):
            await asyncio.to_thread(run, client, agent_id, "largest_dirs", path="../etc")
        with pytest.raises(ConsoleError, match="remediation is off by admin policy"):
            await asyncio.to_thread(run, client, agent_id, "flush_dns_cache")
        assert (
            await asyncio.to_thread(client.list_diagnostics, console_pb2.ListDiagnosticsRequest())
            == []
        )


async def test_an_offline_machine_gets_its_request_on_return_or_it_expires(
    collector: Collector, tmp_path: Path
) -> None:
    settings = agent_settings(collector, tmp_path)
    with console(collector) as client:
        async with running_agent(Agent(settings)):
            agent_id = await connected_agent_id(client)

        async def offline() -> bool:
            agents = await asyncio.to_thread(client.list_agents)
            return not any(a.connected for a in agents)

        await eventually(offline, "the agent to disconnect")
        queued = console_pb2.RunDiagnosticRequest(
            agent_id=agent_id, action="interfaces_routes", no_wait=True, expires_in_seconds=600
        )
        (waiting,) = await asyncio.to_thread(lambda: list(client.run_diagnostic(queued, 30)))
        assert waiting.state == DiagnosticState.QUEUED
        short = console_pb2.RunDiagnosticRequest(
            agent_id=agent_id, action="inventory", no_wait=True, expires_in_seconds=1
        )
        (doomed,) = await asyncio.to_thread(lambda: list(client.run_diagnostic(short, 30)))

        def state_of(request_id: str) -> DiagnosticState | None:
            found = client.list_diagnostics(console_pb2.ListDiagnosticsRequest(agent_id=agent_id))
            return next((DiagnosticState(d.state) for d in found if d.id == request_id), None)

        await eventually(
            lambda: asyncio.to_thread(lambda: state_of(doomed.id) is DiagnosticState.EXPIRED),
            "the short-lived request to expire",
        )
        async with running_agent(Agent(settings)):
            await eventually(
                lambda: asyncio.to_thread(lambda: state_of(waiting.id) is DiagnosticState.DONE),
                "the queued request to run when the machine returned",
            )
        assert await asyncio.to_thread(state_of, doomed.id) is DiagnosticState.EXPIRED


async def test_the_agent_itself_refuses_an_action_it_does_not_know(
    collector: Collector, tmp_path: Path
) -> None:
    settings = agent_settings(collector, tmp_path)
    with console(collector) as client:
        async with running_agent(Agent(settings)):
            agent_id = await connected_agent_id(client)
        # As if a newer collector had queued an action this agent has never heard of.
        forged = collector.store.call(
            lambda s: request(
                s,
                agent_id,
                "format_disk",
                {"all": True},
                "mallory",
                datetime.now(UTC),
                timedelta(minutes=10),
            )
        )
        async with running_agent(Agent(settings)):

            def refused() -> console_pb2.Diagnostic | None:
                found = client.list_diagnostics(console_pb2.ListDiagnosticsRequest())
                return next(
                    (
                        d
                        for d in found
                        if d.id == forged.row.id and d.state == DiagnosticState.REFUSED
                    ),
                    None,
                )

            answer = await eventually(lambda: asyncio.to_thread(refused), "the agent's refusal")
    assert "format_disk" in answer.error


async def test_auto_triage_attaches_diagnostics_to_a_ticket_a_failing_check_opened(
    collector: Collector, tmp_path: Path
) -> None:
    settings = agent_settings(collector, tmp_path, **{DISK: disk_check(tmp_path, **MUST_FAIL)})
    with console(collector) as client:
        async with running_agent(Agent(settings)):

            def triaged() -> console_pb2.TicketDetail | None:
                tickets = [t for t in client.list_tickets() if t.check_id == DISK]
                if not tickets:
                    return None
                detail = client.get_ticket(tickets[0].id)
                done = [d for d in detail.diagnostics if d.state == DiagnosticState.DONE]
                return detail if done else None

            detail = await eventually(lambda: asyncio.to_thread(triaged), "the triage result")
    (diagnostic,) = detail.diagnostics
    assert diagnostic.action == "largest_dirs" and diagnostic.requested_by == "auto-triage"
    assert diagnostic.ticket_id == detail.ticket.id
    assert "big" in str(diagnostic.output)
