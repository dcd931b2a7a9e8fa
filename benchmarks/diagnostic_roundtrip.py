"""Diagnostic round trip through a real collector with many connected simulated agents.

    .venv/bin/python -m benchmarks.diagnostic_roundtrip [--agents 1000] [--samples 500]
        [--concurrency 8] [--database-url postgresql+psycopg://...]

Three processes, so the collector has its own event loop and CPU share: the collector
(`remdiag collector serve` on 127.0.0.1, SQLite in a temporary directory unless
--database-url says otherwise), the simulated agents (one grpc.aio event loop; each agent
enrolls, holds its own Connect stream on its own connection, heartbeats at the interval
Welcome gives and answers every DiagnosticRequest at once with DONE and a small output: the
protocol only, no real action runs) and this one, the console caller. Once ListAgents shows
every agent connected, it runs `--samples` RunDiagnostic calls of a cheap action
("inventory", no arguments, validated by the collector against the real action registry) on
random agents, one at a time, and then, with --concurrency K, with K callers at once. A round
trip is from the request sent to the final DONE event received.
Target (issue 7): p99 <= 250 ms with 1,000 connected agents, one caller at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from benchmarks.simulated import (
    AGENT_CHANNEL_OPTIONS,
    AGENT_VERSION,
    CALL_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    BenchmarkError,
    collector_process,
    command_line,
    cpu_seconds,
    free_port,
    load_line,
    log_tail,
    machine_identity,
    machine_line,
    timestamp,
)
from remdiag.v1 import agent_pb2, agent_pb2_grpc, console_pb2, console_pb2_grpc
from remdiag.vocabulary import DiagnosticState

P99_TARGET_MS = 250.0
ACTION = "inventory"
WARMUP_CALLS = 20
# --- the simulated agents (their own process) --------------------------------------------


@dataclass
class Counters:
    """Shared with the parent for progress: how far the agents have got."""

    enrolled: Synchronized[int]
    connected: Synchronized[int]
    answered: Synchronized[int]
    failed: Synchronized[int]


class SimulatedAgent:
    """One agent: enroll, Connect with Hello, heartbeats, DONE for every diagnostic."""

    def __init__(self, index: int, address: str, run_id: str, counters: Counters) -> None:
        self.machine = machine_identity(run_id, index)
        self._address = address
        self._counters = counters
        self._channel = grpc.aio.insecure_channel(address, options=AGENT_CHANNEL_OPTIONS)
        self._stub = agent_pb2_grpc.AgentServiceStub(self._channel)
        self._write_lock = asyncio.Lock()
        self.agent_id = ""
        self._credential = ""

    async def enroll(self) -> None:
        reply = await self._stub.Enroll(
            agent_pb2.EnrollRequest(machine=self.machine, agent_version=AGENT_VERSION),
            timeout=CALL_TIMEOUT_S,
        )
        self.agent_id, self._credential = reply.agent_id, reply.credential
        with self._counters.enrolled.get_lock():
            self._counters.enrolled.value += 1

    async def connect(self) -> grpc.aio.StreamStreamCall[Any, Any]:
        """Open the stream and wait for Welcome; returns the call and starts nothing."""
        call = self._stub.Connect(
            metadata=(
                ("x-remdiag-agent-id", self.agent_id),
                ("authorization", f"Bearer {self._credential}"),
            )
        )
        await call.write(
            agent_pb2.AgentMessage(
                hello=agent_pb2.Hello(
                    agent_id=self.agent_id, agent_version=AGENT_VERSION, machine=self.machine
                )
            )
        )
        first = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
        if first is grpc.aio.EOF or first.WhichOneof("payload") != "welcome":
            raise BenchmarkError(f"agent {self.agent_id}: no Welcome after Hello ({first})")
        self.heartbeat_s = float(first.welcome.heartbeat_interval_seconds or 30)
        with self._counters.connected.get_lock():
            self._counters.connected.value += 1
        return call

    async def hold(self, call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
        """Answer requests and heartbeat until the stream ends."""
        heartbeats = asyncio.create_task(self._heartbeats(call))
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    raise BenchmarkError(f"agent {self.agent_id}: the collector ended the stream")
                if message.WhichOneof("payload") == "diagnostic":
                    await self._answer(call, message.diagnostic)
        finally:
            heartbeats.cancel()

    async def _answer(
        self, call: grpc.aio.StreamStreamCall[Any, Any], request: agent_pb2.DiagnosticRequest
    ) -> None:
        output = struct_pb2.Struct()
        output.update({"simulated": True, "action": request.action, "agent": self.agent_id})
        update = agent_pb2.DiagnosticUpdate(
            request_id=request.request_id,
            state=DiagnosticState.DONE.value,
            output=output,
            at=timestamp(),
        )
        async with self._write_lock:
            await call.write(agent_pb2.AgentMessage(diagnostic=update))
        with self._counters.answered.get_lock():
            self._counters.answered.value += 1

    async def _heartbeats(self, call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
        # The first at a random point of the interval, so 1,000 agents do not beat together.
        await asyncio.sleep(random.uniform(0, self.heartbeat_s))
        while True:
            async with self._write_lock:
                await call.write(
                    agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(sent_at=timestamp()))
                )
            await asyncio.sleep(self.heartbeat_s)

    async def close(self) -> None:
        await self._channel.close()


async def _run_agents(
    address: str, count: int, limit: int, run_id: str, counters: Counters, errors: Any
) -> None:
    agents = [SimulatedAgent(i, address, run_id, counters) for i in range(count)]
    gate = asyncio.Semaphore(limit)

    async def live(agent: SimulatedAgent) -> None:
        try:
            async with gate:  # enroll and connect, not the holding, count against the limit
                await agent.enroll()
                call = await agent.connect()
            await agent.hold(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one agent's failure is reported, the others go on
            with counters.failed.get_lock():
                counters.failed.value += 1
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc
            errors.put(f"{agent.machine.hostname}: {type(exc).__name__}: {detail}")

    try:
        await asyncio.gather(*(live(agent) for agent in agents))
    finally:
        await asyncio.gather(*(agent.close() for agent in agents), return_exceptions=True)


def simulate_agents(
    address: str, count: int, limit: int, run_id: str, counters: Counters, errors: Any
) -> None:
    """The agents' process: runs until its parent terminates it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us, after its own report
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(SystemExit):
        asyncio.run(_run_agents(address, count, limit, run_id, counters, errors))


# --- the collector (a subprocess) ----------------------------------------------------------


def console_token(database_url: str, run_id: str) -> str:
    """An admin console token made on the collector's database, as `remdiag token` does."""
    from collector import console_tokens
    from collector.console_tokens import Role
    from collector.store.runner import Store

    store = Store(database_url)  # migrates a new database
    try:
        made = store.call(
            lambda s: console_tokens.create(s, datetime.now(UTC), f"bench-{run_id}", Role.ADMIN)
        )
    finally:
        store.close()
    return made.secret


# --- the console caller (this process) -----------------------------------------------------


async def connected_agents(
    stub: console_pb2_grpc.ConsoleServiceStub, metadata: tuple[tuple[str, str], ...], prefix: str
) -> list[str]:
    reply = await stub.ListAgents(
        console_pb2.ListAgentsRequest(), metadata=metadata, timeout=CALL_TIMEOUT_S
    )
    return [a.agent_id for a in reply.agents if a.connected and a.hostname.startswith(prefix)]


async def wait_for_collector(
    stub: console_pb2_grpc.ConsoleServiceStub,
    metadata: tuple[tuple[str, str], ...],
    collector: subprocess.Popen[bytes],
    log_path: Path,
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if collector.poll() is not None:
            raise BenchmarkError(
                f"the collector exited with status {collector.returncode}:\n{log_tail(log_path)}"
            )
        try:
            await stub.ListAgents(console_pb2.ListAgentsRequest(), metadata=metadata, timeout=2)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise BenchmarkError(
                    f"the collector does not answer ListAgents: {exc.code().name}: "
                    f"{exc.details()}\n{log_tail(log_path)}"
                ) from None
        await asyncio.sleep(0.2)


async def wait_for_agents(
    stub: console_pb2_grpc.ConsoleServiceStub,
    metadata: tuple[tuple[str, str], ...],
    prefix: str,
    count: int,
    counters: Counters,
    errors: Any,
    checks: tuple[subprocess.Popen[bytes], multiprocessing.process.BaseProcess, Path],
    timeout_s: float,
) -> list[str]:
    collector, agents, log_path = checks
    start = time.monotonic()
    ids: list[str] = []
    while len(ids) < count:
        if collector.poll() is not None:
            raise BenchmarkError(
                f"the collector exited with status {collector.returncode}:\n{log_tail(log_path)}"
            )
        if not agents.is_alive():
            raise BenchmarkError(f"the agents' process exited ({agents.exitcode})")
        if counters.failed.value:
            raise BenchmarkError(
                f"{counters.failed.value} simulated agents failed; first: {errors.get(timeout=5)}"
            )
        ids = await connected_agents(stub, metadata, prefix)
        elapsed = time.monotonic() - start
        print(
            f"\r  {elapsed:5.0f} s: enrolled {counters.enrolled.value}/{count}, "
            f"connected {counters.connected.value}/{count}, "
            f"ListAgents shows {len(ids)} connected",
            end="",
            flush=True,
        )
        if elapsed > timeout_s:
            print()
            raise BenchmarkError(
                f"only {len(ids)} of {count} agents connected in {timeout_s:.0f} s"
            )
        if len(ids) < count:
            await asyncio.sleep(1.0)
    print()
    return ids


async def round_trip(
    stub: console_pb2_grpc.ConsoleServiceStub,
    metadata: tuple[tuple[str, str], ...],
    agent_id: str,
) -> float:
    """Milliseconds from the request sent to the final event received; raises unless DONE."""
    request = console_pb2.RunDiagnosticRequest(agent_id=agent_id, action=ACTION)
    start = time.perf_counter()
    call = stub.RunDiagnostic(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
    async for event in call:
        state = DiagnosticState(event.diagnostic.state)
        if state.is_final:
            elapsed = (time.perf_counter() - start) * 1000
            if state is not DiagnosticState.DONE:
                raise BenchmarkError(
                    f"diagnostic on {agent_id} ended {state.label}: {event.diagnostic.error}"
                )
            call.cancel()
            return elapsed
    raise BenchmarkError(f"RunDiagnostic on {agent_id} ended without a final state")


@dataclass(frozen=True)
class Run:
    """Measured round trips: milliseconds each, when each ended (epoch s), wall seconds."""

    samples: list[float]
    ended_at: list[float]
    wall_s: float


async def measure(
    stub: console_pb2_grpc.ConsoleServiceStub,
    metadata: tuple[tuple[str, str], ...],
    agent_ids: list[str],
    samples: int,
    callers: int,
    show_progress: bool = False,
) -> Run:
    """`samples` round trips split over `callers` concurrent callers."""
    results: list[float] = []
    ended_at: list[float] = []
    shares = [samples // callers + (1 if i < samples % callers else 0) for i in range(callers)]

    async def caller(share: int) -> None:
        for _ in range(share):
            results.append(await round_trip(stub, metadata, random.choice(agent_ids)))
            ended_at.append(time.time())
            if show_progress and len(results) % 50 == 0:
                print(f"\r  {len(results)}/{samples}", end="", flush=True)

    start = time.perf_counter()
    await asyncio.gather(*(caller(share) for share in shares))
    wall = time.perf_counter() - start
    if show_progress:
        print()
    return Run(results, ended_at, wall)


def summary(label: str, run: Run) -> float:
    """Prints the figures and when the slowest ended (to match with the collector's log);
    returns p99."""
    samples = run.samples
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    p50, p90, p99 = cuts[49], cuts[89], cuts[98]
    print(
        f"{label}: {len(samples)} round trips in {run.wall_s:.1f} s "
        f"({len(samples) / run.wall_s:.0f}/s): p50 {p50:.1f} ms, p90 {p90:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(samples):.1f} ms"
    )
    slowest = sorted(zip(samples, run.ended_at, strict=True), reverse=True)[:3]
    ends = (datetime.fromtimestamp(end).strftime("%H:%M:%S.%f")[:-3] for _, end in slowest)
    print(
        "  slowest: "
        + ", ".join(
            f"{ms:.0f} ms (ended {end})" for (ms, _), end in zip(slowest, ends, strict=True)
        )
    )
    return p99


async def benchmark(args: argparse.Namespace, workdir: Path) -> bool:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}-"
    database_url = args.database_url or f"sqlite:///{workdir / 'collector.db'}"
    port = args.port or free_port()
    address = f"127.0.0.1:{port}"
    token = console_token(database_url, run_id)
    metadata = (("authorization", f"Bearer {token}"),)
    spawn = multiprocessing.get_context("spawn")
    counters = Counters(*(spawn.Value("i", 0) for _ in range(4)))
    errors = spawn.Queue()
    with collector_process(port, database_url, workdir) as (collector, log_path):
        channel = grpc.aio.insecure_channel(address)
        stub = console_pb2_grpc.ConsoleServiceStub(channel)
        agents = spawn.Process(
            target=simulate_agents,
            args=(address, args.agents, args.enroll_concurrency, run_id, counters, errors),
            name="simulated-agents",
            daemon=True,
        )
        try:
            await wait_for_collector(stub, metadata, collector, log_path)
            print(f"collector pid {collector.pid} on {address}, log {log_path}")
            agents.start()
            print(f"agents pid {agents.pid}: enrolling and connecting {args.agents} agents")
            checks = (collector, agents, log_path)
            agent_ids = await wait_for_agents(
                stub, metadata, prefix, args.agents, counters, errors, checks, args.connect_timeout
            )
            print(f"all {len(agent_ids)} agents connected; {WARMUP_CALLS} warm-up round trips")
            await measure(stub, metadata, agent_ids, WARMUP_CALLS, 1)
            pids = {"collector": collector.pid, "agents": agents.pid, "caller": os.getpid()}
            before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
            run = await measure(stub, metadata, agent_ids, args.samples, 1, True)
            wall = run.wall_s
            used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items() if pid}
            p99 = summary("sequential (1 caller)", run)
            print(
                "  CPU during it, % of one core: "
                + ", ".join(f"{name} {100 * s / wall:.0f}%" for name, s in used.items())
            )
            if args.concurrency > 1:
                more = await measure(stub, metadata, agent_ids, args.samples, args.concurrency)
                summary(f"concurrent ({args.concurrency} callers)", more)
            connected = len(await connected_agents(stub, metadata, prefix))
            print(
                f"agents still connected: {connected}/{args.agents}; "
                f"answered {counters.answered.value} diagnostics; failed {counters.failed.value}"
            )
            passed = p99 <= P99_TARGET_MS
            print(
                f"target: p99 <= {P99_TARGET_MS:.0f} ms with {args.agents} connected agents "
                f"(sequential): {'PASS' if passed else 'FAIL'}"
            )
            if args.hold:
                print(f"holding for {args.hold:.0f} s (e.g. for a profiler) ...", flush=True)
                await asyncio.sleep(args.hold)
            return passed
        finally:
            await channel.close()
            if agents.pid is not None and agents.is_alive():
                agents.terminate()
                agents.join(timeout=20)
                if agents.is_alive():
                    agents.kill()
                    agents.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000, help="simulated connected agents")
    parser.add_argument("--samples", type=int, default=500, help="measured round trips")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="also measure --samples round trips with this many callers at once",
    )
    parser.add_argument(
        "--database-url",
        help="the collector's SQLAlchemy URL, e.g. postgresql+psycopg://... "
        "(default: SQLite in a temporary directory)",
    )
    parser.add_argument("--port", type=int, default=0, help="127.0.0.1 port (default: free)")
    parser.add_argument(
        "--enroll-concurrency", type=int, default=32, help="agents enrolling at once"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=600.0, help="seconds for all agents to connect"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the collector's database and log here (default: a temporary directory)",
    )
    parser.add_argument(
        "--hold", type=float, default=0.0, help="seconds to keep everything up after measuring"
    )
    args = parser.parse_args()
    if args.agents < 1 or args.samples < 2 or args.enroll_concurrency < 1:
        parser.error("--agents >= 1, --samples >= 2 and --enroll-concurrency >= 1")
    print(machine_line())
    print(load_line())
    print(command_line())
    print(
        f"agents: {args.agents}, samples: {args.samples}, action: {ACTION}, "
        f"store: {'given URL' if args.database_url else 'SQLite'}"
    )
    try:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            passed = asyncio.run(benchmark(args, args.workdir.resolve()))
        else:
            with tempfile.TemporaryDirectory(prefix="remdiag-bench-") as tmp:
                passed = asyncio.run(benchmark(args, Path(tmp)))
    except KeyboardInterrupt:
        print("\ninterrupted: collector and agents stopped", file=sys.stderr)
        sys.exit(130)
    except BenchmarkError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except grpc.aio.AioRpcError as exc:
        print(f"\nbenchmark failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if passed else 3)


if __name__ == "__main__":
    main()
