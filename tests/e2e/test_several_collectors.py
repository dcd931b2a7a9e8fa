"""Two real collector processes (`remdiag collector serve`) on one PostgreSQL schema: a
diagnostic asked through one reaches a machine held by the other and its outcome comes back;
results for one machine ingested through both concurrently open one ticket; the SLA sweep that
both run marks a late ticket breached once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select, update

from agent.app import Agent
from agent.config import AgentSettings
from collector import console_tokens, fleet
from collector.client import ConsoleClient
from collector.convert import dict_to_struct
from collector.store.models import CLOSED_STATES, Ticket, TicketEvent
from collector.store.runner import Store
from remdiag.v1 import agent_pb2, agent_pb2_grpc, console_pb2
from remdiag.vocabulary import DiagnosticState
from tests.collector.factories import batch, hello, machine, pb_result
from tests.e2e.test_end_to_end import running_agent
from tests.support import LOOPBACK_CHECKS, eventually, free_port

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent
# Tickets on the first critical result; the desk sweep every second.
CONFIG = "[tickets]\nfails_before_ticket = 1\n\n[desk]\nsweep_seconds = 1\n"


@dataclass
class Pair:
    """Two collectors on one database, and the test's own handle on that database."""

    store: Store
    ports: tuple[int, int]
    logs: tuple[Path, Path]
    console_secret: str


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def pair(
    postgres_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> AsyncIterator[Pair]:
    store = await asyncio.to_thread(Store, postgres_url)  # migrates the schema once, up front
    made = store.call(
        lambda s: console_tokens.create(
            s, datetime.now(UTC), "alice", console_tokens.Role.TECHNICIAN
        )
    )
    config = tmp_path / "collector.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMDIAG_")}
    ports = (free_port(), free_port())
    logs = (tmp_path / "collector-a.log", tmp_path / "collector-b.log")
    for port, log in zip(ports, logs, strict=True):
        processes.append(_serve(config, port, postgres_url, log, env))
    for port, process in zip(ports, processes, strict=True):
        await eventually(lambda p=port, q=process: _listening(p, q), "a collector to listen", 30)
    try:
        yield Pair(store, ports, logs, made.secret)
    finally:
        await asyncio.to_thread(store.close)


def _serve(
    config: Path, port: int, url: str, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(BIN / "remdiag"),
                "collector",
                "serve",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
                "--database-url",
                url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "a collector exited"
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_a_diagnostic_asked_through_one_collector_reaches_an_agent_on_the_other(
    pair: Pair, tmp_path: Path
) -> None:
    a, b = pair.ports
    settings = AgentSettings(
        collector=f"127.0.0.1:{b}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks=LOOPBACK_CHECKS,  # type: ignore[arg-type]
    )
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "file").write_bytes(b"x" * 200_000)
    with ConsoleClient(f"127.0.0.1:{a}", pair.console_secret) as client:
        async with running_agent(Agent(settings)):

            async def connected() -> str | None:
                agents = await asyncio.to_thread(client.list_agents)
                return next((x.agent_id for x in agents if x.connected), None)

            agent_id = await eventually(connected, "the agent to connect to collector B")
            request = console_pb2.RunDiagnosticRequest(
                agent_id=agent_id,
                action="largest_dirs",
                args=dict_to_struct({"path": str(tmp_path)}),
            )
            changes = await asyncio.to_thread(lambda: list(client.run_diagnostic(request, 60)))
    states = [DiagnosticState(c.state) for c in changes]
    assert states[0] is DiagnosticState.QUEUED and states[-1] is DiagnosticState.DONE
    assert "big" in str(changes[-1].output)


async def _send(port: int, n: int, agent_id: str, credential: str, sequence: int) -> None:
    """One agent stream to the collector on `port`: hello, one critical result, close."""
    metadata = (("x-remdiag-agent-id", agent_id), ("authorization", f"Bearer {credential}"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        messages = [hello(agent_id, n), batch(sequence, pb_result())]
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(iter(messages), metadata=metadata)
        replies: list[agent_pb2.CollectorMessage] = [reply async for reply in call]
        assert any(r.HasField("ack") for r in replies), replies


async def test_results_through_both_collectors_at_once_open_one_ticket(pair: Pair) -> None:
    now = datetime.now(UTC)
    machines = [pair.store.call(lambda s, n=n: fleet.enroll(s, machine(n), now)) for n in (1, 2)]
    a, b = pair.ports
    # Each machine's results arrive through both collectors at the same moment, several times.
    for round_ in range(3):
        await asyncio.gather(
            *(
                _send(port, n, m.agent_id, m.credential, 2 * round_ + offset)
                for n, m in enumerate(machines, 1)
                for port, offset in ((a, 1), (b, 2))
            )
        )

    def open_tickets(agent_id: str) -> int:
        return pair.store.call(
            lambda s: (
                s.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .where(Ticket.agent_id == agent_id, Ticket.state.not_in(CLOSED_STATES))
                )
                or 0
            )
        )

    for m in machines:
        assert open_tickets(m.agent_id) == 1


async def test_the_sla_sweep_marks_a_late_ticket_breached_once(pair: Pair) -> None:
    now = datetime.now(UTC)
    machines = [pair.store.call(lambda s, n=n: fleet.enroll(s, machine(n), now)) for n in (1, 2)]
    a, b = pair.ports

    async def late_ticket(n: int, port: int) -> int:
        agent_id, credential = machines[n - 1].agent_id, machines[n - 1].credential
        await _send(port, n, agent_id, credential, 1)
        found = pair.store.call(
            lambda s: s.scalar(select(Ticket.id).where(Ticket.agent_id == agent_id))
        )
        assert found is not None
        pair.store.call(
            lambda s: s.execute(
                update(Ticket)
                .where(Ticket.id == found)
                .values(respond_by=datetime.now(UTC) - timedelta(minutes=1))
            )
        )
        return found

    def breaches(ticket_id: int) -> int:
        return pair.store.call(
            lambda s: (
                s.scalar(
                    select(func.count())
                    .select_from(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "breached")
                )
                or 0
            )
        )

    first = await late_ticket(1, a)
    await eventually(lambda: asyncio.to_thread(breaches, first), "the first ticket to breach")
    # Both collectors keep sweeping; a later breach shows rounds went by since the first.
    second = await late_ticket(2, b)
    await eventually(lambda: asyncio.to_thread(breaches, second), "the second ticket to breach")
    assert (breaches(first), breaches(second)) == (1, 1)
    # The sweep ran in both processes, one at a time: each log names the breaches it made.
    named = [log.read_text().count("escalated: SLA deadline missed") for log in pair.logs]
    assert sum(named) == 2
