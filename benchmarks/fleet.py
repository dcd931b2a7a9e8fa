"""Load generator: N simulated agents, each with a real enrolled identity and Connect stream.

    .venv/bin/python -m benchmarks.fleet [--agents 1000] [--processes 1] [--rate 0.43]
        [--batch 100] [--window 2] [--failing 0.05] [--duration 60]
        [--collector 127.0.0.1:PORT | --database-url postgresql+psycopg://...]

Each agent enrolls (Enroll), opens Connect with Hello, waits for Welcome, sends a full
inventory, then result batches of `--batch` results (the 26 checks of agent/checks/registry.py
in turn, with their real thresholds, declared values, summaries of a realistic length and the
check's remediation hint when it fails) at `--rate` results a second (0: as fast as the
collector's acks allow), with at most `--window` batches unacknowledged, and heartbeats at the
interval Welcome gives. `--failing` is the share of each agent's checks that keep failing, so
tickets open and then collect failures as on a real fleet. When a stream breaks, the agent
reconnects and resends every batch the Welcome does not acknowledge, as the real agent does:
on a fresh channel (so gRPC's own reconnect backoff, up to two minutes, never applies), after
the agent's own full-jitter backoff (agent/transport.py), which starts afresh after a stream
that lasted, or after the pause a busy collector asked for when it refused the stream.

Without --collector it starts its own `remdiag collector serve` on 127.0.0.1 (SQLite in a
temporary directory unless --database-url). Agents are spread over `--processes` processes
(one grpc.aio event loop each). It prints progress while enrolling and connecting, then the
results acknowledged a second. benchmarks/ingest.py drives it to measure ingest.
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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from agent.checks.registry import CHECKS
from agent.pushback import asked_pause
from agent.transport import Backoff, TransportSettings
from benchmarks.simulated import (
    AGENT_CHANNEL_OPTIONS,
    AGENT_VERSION,
    CALL_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    BenchmarkError,
    collector_process,
    command_line,
    free_port,
    load_line,
    log_tail,
    loopback_only,
    machine_identity,
    machine_line,
    timestamp,
    wait_listening,
)
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from remdiag.vocabulary import CheckStatus

CONNECT_PATH = "/remdiag.v1.AgentService/Connect"
INVENTORY_PACKAGES = 300
BACKOFF = TransportSettings(collector="", state_dir=Path())
"""The real agent's default reconnect backoff."""


@dataclass(frozen=True)
class FleetConfig:
    agents: int
    processes: int = 1
    batch: int = 100
    rate: float = 0.0
    """Results a second per agent; 0: as fast as acks allow (saturation)."""
    window: int = 2
    """Batches an agent may have sent and not yet had acknowledged."""
    failing: float = 0.05
    enroll_concurrency: int = 32
    run_id: str = "fleet"
    nice: int = 0
    """Added to the agents' processes' niceness: on a machine the collector shares with them,
    the collector gets the cores first, as on a machine of its own."""


@dataclass
class FleetCounters:
    """Shared by the agents' processes with the parent, for progress and rates."""

    enrolled: Synchronized[int]
    connected: Synchronized[int]
    sent: Synchronized[int]
    acked: Synchronized[int]
    """Results acknowledged (stored, for a real collector)."""
    reconnects: Synchronized[int]
    failed: Synchronized[int]
    online: Synchronized[int]
    """Agents holding a stream now: Welcome received, stream not yet ended."""
    paused: Synchronized[int]
    """Set by the parent: while nonzero, agents make no new batches (they still resend,
    send inventories and heartbeats, and read acks)."""
    generated: Any = None
    """Per agent index, the results in the batches it made (a shared array, no lock: each
    index has one writer)."""

    @classmethod
    def make(cls, context: Any, agents: int = 0) -> FleetCounters:
        counters = cls(*(context.Value("q", 0) for _ in range(8)))
        counters.generated = context.Array("q", agents, lock=False)
        return counters


def add(counter: Synchronized[int], amount: int = 1) -> None:
    with counter.get_lock():
        counter.value += amount


# --- what an agent sends -------------------------------------------------------------------


def _summary(title: str, status: CheckStatus, rng: random.Random) -> str:
    measured = rng.uniform(1, 99)
    if status.is_failure:
        return f"{title}: {measured:.1f} beyond the threshold on 1 of 3 items; worst /var (sdb1)"
    return f"{title}: {measured:.1f}, within thresholds on all 3 items measured"


def check_result(check_id: str, failing: bool, rng: random.Random) -> common_pb2.CheckResult:
    """One result as agent/convert.py would send it for `check_id`."""
    check = CHECKS[check_id]
    status = CheckStatus.CRITICAL if failing else CheckStatus.OK
    thresholds = struct_pb2.Struct()
    thresholds.update(check.thresholds().model_dump(mode="json"))
    message = common_pb2.CheckResult(
        check_id=check_id,
        category=int(check.category),  # type: ignore[arg-type]
        status=int(status),  # type: ignore[arg-type]
        summary=_summary(check.title, status, rng),
        thresholds=thresholds,
        observed_at=timestamp(),
        remediation=check.remediation if failing else "",
    )
    for spec in check.emits:
        message.values.add(name=spec.name, unit=spec.unit, number=round(rng.uniform(0, 500), 2))
    return message


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def batch_body(failing_checks: frozenset[str], size: int, rng: random.Random) -> bytes:
    """The `results` field of an AgentMessage, serialized once: the checks in turn."""
    ids = list(CHECKS)
    batch = agent_pb2.ResultBatch(
        results=[
            check_result(ids[i % len(ids)], ids[i % len(ids)] in failing_checks, rng)
            for i in range(size)
        ]
    )
    payload = batch.SerializeToString()
    return b"\x22" + _varint(len(payload)) + payload  # field 4 (results), length-delimited


def with_sequence(sequence: int, body: bytes) -> bytes:
    """An AgentMessage on the wire: field 1 (sequence) then the prepared payload."""
    return b"\x08" + _varint(sequence) + body


def inventory_body(rng: random.Random) -> bytes:
    facts = struct_pb2.Struct()
    facts.update(
        {
            "cpu": {"model": "Intel(R) Core(TM) i5-8365U CPU @ 1.60GHz", "cores": 4, "threads": 8},
            "memory": {"total_bytes": 16 * 2**30, "swap_bytes": 2 * 2**30},
            "disks": [
                {"device": "/dev/nvme0n1p2", "mount": "/", "fs": "ext4", "total_bytes": 5e11},
                {
                    "device": "/dev/nvme0n1p1",
                    "mount": "/boot/efi",
                    "fs": "vfat",
                    "total_bytes": 5e8,
                },
            ],
            "software": [
                {
                    "name": f"package-{i:03d}",
                    "version": f"{rng.randint(0, 9)}.{i}.{rng.randint(0, 99)}",
                }
                for i in range(INVENTORY_PACKAGES)
            ],
            "network": [{"name": "wlp2s0", "mac": "3c:22:fb:00:00:01", "ipv4": ["192.0.2.10"]}],
            "os": {"name": "Ubuntu", "version": "24.04", "kernel": "6.8.0-45-generic"},
        }
    )
    inventory = agent_pb2.Inventory(facts=facts, full=True, collected_at=timestamp())
    payload = inventory.SerializeToString()
    return b"\x1a" + _varint(len(payload)) + payload  # field 3 (inventory)


# --- one simulated agent -------------------------------------------------------------------


def _identity(message: bytes) -> bytes:
    return message


@dataclass
class Pending:
    """A sent, unacknowledged data message: its bytes, results and when it was first sent."""

    message: bytes
    results: int
    sent_at: float


@dataclass
class FleetAgent:
    index: int
    address: str
    config: FleetConfig
    counters: FleetCounters
    rng: random.Random
    machine: agent_pb2.MachineIdentity = field(init=False)
    agent_id: str = ""
    credential: str = ""
    sequence: int = 0
    unacked: dict[int, Pending] = field(default_factory=dict)
    welcomed_at: float | None = None
    """When the current stream's Welcome came (monotonic), None before it."""
    acks: list[float] = field(default_factory=list)
    """Seconds from first send to ack, of every batch acked (for latency figures)."""

    def __post_init__(self) -> None:
        self.machine = machine_identity(self.config.run_id, self.index)
        ids = list(CHECKS)
        failing = frozenset(i for i in ids if self.rng.random() < self.config.failing)
        self.body = batch_body(failing, self.config.batch, self.rng)
        # A PC's software does not change across a collector restart: the same full inventory
        # on every connect, as the real agent sends it (the collector knows it by its digest).
        self.inventory = inventory_body(self.rng)
        self._open_channel()
        self.window = asyncio.Semaphore(self.config.window)
        self.write_lock = asyncio.Lock()

    def _open_channel(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.address, options=AGENT_CHANNEL_OPTIONS)
        self.connect = self.channel.stream_stream(
            CONNECT_PATH,
            request_serializer=_identity,  # messages are prepared bytes
            response_deserializer=agent_pb2.CollectorMessage.FromString,
        )

    async def enroll(self) -> None:
        stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        reply = await stub.Enroll(
            agent_pb2.EnrollRequest(machine=self.machine, agent_version=AGENT_VERSION),
            timeout=CALL_TIMEOUT_S,
        )
        self.agent_id, self.credential = reply.agent_id, reply.credential
        add(self.counters.enrolled)

    async def live(self, connected: Callable[[], None]) -> None:
        """Connect, send and reconnect until cancelled."""
        first = True
        backoff = Backoff(
            BACKOFF.reconnect_initial_seconds, BACKOFF.reconnect_max_seconds, self.rng
        )
        while True:
            self.welcomed_at = None
            asked: float | None = None
            # As the real agent, also retry when no Welcome came in time (a busy collector)
            # or the stream ended under a write (InvalidStateError).
            try:
                await self._session(connected if first else lambda: None)
            except grpc.aio.AioRpcError as exc:
                asked = asked_pause(exc)
            except (BenchmarkError, TimeoutError, asyncio.InvalidStateError):
                pass
            lasted = None if self.welcomed_at is None else time.monotonic() - self.welcomed_at
            if lasted is not None:
                first = False
            add(self.counters.reconnects)
            await self.channel.close()
            self._open_channel()
            await asyncio.sleep(backoff.next_delay(lasted, asked))

    async def _session(self, connected: Callable[[], None]) -> None:
        call = self.connect(
            metadata=(
                ("x-remdiag-agent-id", self.agent_id),
                ("authorization", f"Bearer {self.credential}"),
            )
        )
        hello = agent_pb2.AgentMessage(
            hello=agent_pb2.Hello(
                agent_id=self.agent_id,
                agent_version=AGENT_VERSION,
                machine=self.machine,
                last_sequence=self.sequence,
            )
        )
        await call.write(hello.SerializeToString())
        welcome = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
        if welcome is grpc.aio.EOF or welcome.WhichOneof("payload") != "welcome":
            raise BenchmarkError(f"agent {self.agent_id}: no Welcome after Hello")
        self.welcomed_at = time.monotonic()
        self._acked(welcome.welcome.last_acked_sequence)
        heartbeat_s = float(welcome.welcome.heartbeat_interval_seconds or 30)
        connected()
        add(self.counters.online)
        self.window = asyncio.Semaphore(max(0, self.config.window - len(self.unacked)))
        tasks = [
            asyncio.create_task(self._reader(call)),
            asyncio.create_task(self._heartbeats(call, heartbeat_s)),
            asyncio.create_task(self._sender(call)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            add(self.counters.online, -1)
            for task in tasks:
                task.cancel()
            call.cancel()

    def _acked(self, through: int) -> None:
        now = time.monotonic()
        results = 0
        for sequence in [s for s in self.unacked if s <= through]:
            pending = self.unacked.pop(sequence)
            results += pending.results
            self.window.release()
            if pending.results:
                self.acks.append(now - pending.sent_at)
        if results:
            add(self.counters.acked, results)

    async def _reader(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                raise BenchmarkError(f"agent {self.agent_id}: the collector ended the stream")
            if message.WhichOneof("payload") == "ack":
                self._acked(message.ack.acked_through)

    async def _write(self, call: Any, message: bytes) -> None:
        async with self.write_lock:
            await call.write(message)

    async def _heartbeats(self, call: Any, interval: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, interval))
        while True:
            beat = agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(sent_at=timestamp()))
            await self._write(call, beat.SerializeToString())
            await asyncio.sleep(interval)

    async def _send(self, call: Any, body: bytes, results: int) -> None:
        await self.window.acquire()
        self.sequence += 1
        message = with_sequence(self.sequence, body)
        self.unacked[self.sequence] = Pending(message, results, time.monotonic())
        if results and self.counters.generated is not None:
            self.counters.generated[self.index] += results
        await self._write(call, message)
        add(self.counters.sent, results)

    async def _sender(self, call: Any) -> None:
        # First what the last stream left unacknowledged, in order, then a fresh inventory.
        for pending in sorted(self.unacked.items()):
            await self._write(call, pending[1].message)
        await self._send(call, self.inventory, 0)
        interval = self.config.batch / self.config.rate if self.config.rate else 0.0
        if interval:
            await asyncio.sleep(self.rng.uniform(0, interval))
        next_at = time.monotonic()
        while True:
            if not self.counters.paused.value:
                await self._send(call, self.body, self.config.batch)
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            elif self.counters.paused.value:
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self.channel.close()


# --- the agents' processes -----------------------------------------------------------------


async def _run_agents(
    address: str,
    config: FleetConfig,
    indexes: range,
    counters: FleetCounters,
    errors: Any,
    latencies: Any,
) -> None:
    agents = [FleetAgent(i, address, config, counters, random.Random(i)) for i in indexes]
    gate = asyncio.Semaphore(config.enroll_concurrency)

    async def live(agent: FleetAgent) -> None:
        try:
            async with gate:  # enrolling and the first Welcome count against the limit
                await agent.enroll()
                connected = asyncio.Event()

                def on_connected() -> None:
                    add(counters.connected)
                    connected.set()

                running = asyncio.create_task(agent.live(on_connected))
                # Not connected.wait() alone: an agent that fails before its first Welcome
                # would hold its enrollment slot for ever (and stall the fleet's enrolling).
                welcomed = asyncio.create_task(connected.wait())
                await asyncio.wait({running, welcomed}, return_when=asyncio.FIRST_COMPLETED)
                welcomed.cancel()
            await running
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one agent's failure is reported, the others go on
            add(counters.failed)
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc
            errors.put(f"{agent.machine.hostname}: {type(exc).__name__}: {detail}")

    tasks = [asyncio.create_task(live(agent)) for agent in agents]
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Ack latencies, for benchmarks that want them (sampled to keep the queue small).
    samples = [s for agent in agents for s in agent.acks]
    random.shuffle(samples)
    latencies.put(samples[:20_000])
    await asyncio.gather(*(agent.close() for agent in agents), return_exceptions=True)


def agents_process(
    address: str,
    config: FleetConfig,
    indexes: range,
    counters: FleetCounters,
    errors: Any,
    latencies: Any,
) -> None:
    """One of the agents' processes: runs until its parent sends SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us, after its own report
    if config.nice:
        os.nice(config.nice)
    asyncio.run(_run_agents(address, config, indexes, counters, errors, latencies))


@dataclass(frozen=True)
class Throughput:
    results_per_s: float
    seconds: float
    acked: int
    sent: int
    reconnects: int
    ack_latency_ms: tuple[float, float] | None
    """p50, p99 of send -> ack of batches, over the whole run."""


class Fleet:
    """The agents' processes, seen from the parent: start, progress, measure, stop."""

    def __init__(self, address: str, config: FleetConfig) -> None:
        self.address = loopback_only(address)
        self.config = config
        spawn = multiprocessing.get_context("spawn")
        self.counters = FleetCounters.make(spawn, config.agents)
        self.errors = spawn.Queue()
        self.latencies = spawn.Queue()
        share = -(-config.agents // config.processes)
        self.processes = [
            spawn.Process(
                target=agents_process,
                args=(
                    self.address,
                    config,
                    range(start, min(start + share, config.agents)),
                    self.counters,
                    self.errors,
                    self.latencies,
                ),
                name=f"fleet-agents-{n}",
                daemon=True,
            )
            for n, start in enumerate(range(0, config.agents, share))
        ]

    def start(self) -> None:
        self.stopped = False
        for process in self.processes:
            process.start()

    def check(self, alive: Callable[[], str | None] = lambda: None) -> None:
        if (trouble := alive()) is not None:
            raise BenchmarkError(trouble)
        for process in self.processes:
            if not process.is_alive():
                raise BenchmarkError(f"{process.name} exited ({process.exitcode})")
        if self.counters.failed.value:
            raise BenchmarkError(
                f"{self.counters.failed.value} simulated agents failed; "
                f"first: {self.errors.get(timeout=5)}"
            )

    def wait_connected(
        self, timeout_s: float, alive: Callable[[], str | None] = lambda: None
    ) -> float:
        """Seconds until every agent had its Welcome; prints progress."""
        start = time.monotonic()
        total = self.config.agents
        while self.counters.connected.value < total:
            self.check(alive)
            elapsed = time.monotonic() - start
            print(
                f"\r  {elapsed:5.0f} s: enrolled {self.counters.enrolled.value}/{total}, "
                f"connected {self.counters.connected.value}/{total}",
                end="",
                flush=True,
            )
            if elapsed > timeout_s:
                print()
                raise BenchmarkError(f"only {self.counters.connected.value} of {total} connected")
            time.sleep(0.5)
        elapsed = time.monotonic() - start
        print(f"\r  {elapsed:5.1f} s: all {total} agents enrolled and connected" + " " * 20)
        return elapsed

    def measure(
        self, warmup_s: float, duration_s: float, alive: Callable[[], str | None] = lambda: None
    ) -> Throughput:
        """Results acknowledged a second over `duration_s`, after `warmup_s`; prints progress."""
        end_warmup = time.monotonic() + warmup_s
        while time.monotonic() < end_warmup:
            self.check(alive)
            time.sleep(0.5)
        acked0, sent0, reconnects0 = (
            self.counters.acked.value,
            self.counters.sent.value,
            self.counters.reconnects.value,
        )
        start = last_t = time.monotonic()
        last = acked0
        while (now := time.monotonic()) - start < duration_s:
            time.sleep(min(1.0, duration_s - (now - start)))
            self.check(alive)
            acked, t = self.counters.acked.value, time.monotonic()
            print(
                f"\r  {t - start:5.0f} s: {(acked - last) / (t - last_t):9.0f} results/s "
                f"(mean {(acked - acked0) / (t - start):9.0f})",
                end="",
                flush=True,
            )
            last, last_t = acked, t
        seconds = time.monotonic() - start
        acked = self.counters.acked.value - acked0
        print()
        return Throughput(
            acked / seconds,
            seconds,
            acked,
            self.counters.sent.value - sent0,
            self.counters.reconnects.value - reconnects0,
            None,
        )

    def stop(self) -> list[float]:
        """Stops the agents' processes; returns their batches' send -> ack seconds (sampled)."""
        if self.stopped:
            return []
        self.stopped = True
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        samples: list[float] = []
        for _ in self.processes:
            with contextlib.suppress(Exception):
                samples.extend(self.latencies.get(timeout=20))
        for process in self.processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
                process.join()
        return samples


@contextlib.contextmanager
def running(address: str, config: FleetConfig) -> Iterator[Fleet]:
    fleet = Fleet(address, config)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


def percentiles_ms(samples: list[float]) -> tuple[float, float] | None:
    if len(samples) < 2:
        return None
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def add_fleet_arguments(parser: argparse.ArgumentParser, agents: int) -> None:
    parser.add_argument("--agents", type=int, default=agents, help="simulated agents (1-20000)")
    parser.add_argument("--processes", type=int, default=1, help="agents' processes")
    parser.add_argument("--batch", type=int, default=100, help="results per batch")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="results a second per agent (26 checks a minute is 0.43); 0: as fast as acked",
    )
    parser.add_argument("--window", type=int, default=2, help="unacknowledged batches per agent")
    parser.add_argument(
        "--failing", type=float, default=0.05, help="share of each agent's checks failing"
    )
    parser.add_argument(
        "--enroll-concurrency", type=int, default=32, help="agents enrolling at once"
    )
    parser.add_argument(
        "--agents-nice",
        type=int,
        default=0,
        help="niceness added to the agents' processes (0-19): the collector gets the cores first",
    )
    parser.add_argument(
        "--database-url",
        help="for the collector this starts: SQLAlchemy URL (default: SQLite in a temp dir)",
    )


def fleet_config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, run_id: str
) -> FleetConfig:
    if not 1 <= args.agents <= 20_000:
        parser.error("--agents must be between 1 and 20000")
    if not 1 <= args.processes <= args.agents:
        parser.error("--processes must be between 1 and --agents")
    if not 1 <= args.batch <= 1000 or args.window < 1 or not 0 <= args.failing <= 1:
        parser.error("--batch 1-1000, --window >= 1, --failing 0-1")
    if not 0 <= args.agents_nice <= 19:
        parser.error("--agents-nice must be between 0 and 19")
    return FleetConfig(
        agents=args.agents,
        processes=args.processes,
        batch=args.batch,
        rate=args.rate,
        window=args.window,
        failing=args.failing,
        enroll_concurrency=args.enroll_concurrency,
        run_id=run_id,
        nice=args.agents_nice,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fleet_arguments(parser, agents=1000)
    parser.add_argument("--collector", help="127.0.0.1:PORT of a running collector")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to measure")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    args = parser.parse_args()
    config = fleet_config(parser, args, run_id=f"{random.getrandbits(32):08x}")
    print(machine_line())
    print(load_line())
    print(command_line())

    def drive(address: str, alive: Callable[[], str | None]) -> None:
        with running(address, config) as fleet:
            fleet.wait_connected(args.connect_timeout, alive)
            result = fleet.measure(args.warmup, args.duration, alive)
            latency = percentiles_ms(fleet.stop())
        print(
            f"{config.agents} agents: {result.results_per_s:.0f} results/s acknowledged over "
            f"{result.seconds:.0f} s ({result.acked} results; reconnects {result.reconnects})"
        )
        if latency is not None:
            print(f"batch send -> ack: p50 {latency[0]:.0f} ms, p99 {latency[1]:.0f} ms")

    try:
        if args.collector:
            drive(args.collector, lambda: None)
            return
        with tempfile.TemporaryDirectory(prefix="remdiag-fleet-") as tmp:
            workdir = Path(tmp)
            url = args.database_url or f"sqlite:///{workdir / 'collector.db'}"
            port = free_port()
            with collector_process(port, url, workdir) as (collector, log_path):

                def alive() -> str | None:
                    if collector.poll() is None:
                        return None
                    return f"the collector exited ({collector.returncode}):\n{log_tail(log_path)}"

                wait_listening(port, alive, STARTUP_TIMEOUT_S)
                print(f"collector pid {collector.pid} on 127.0.0.1:{port}")
                drive(f"127.0.0.1:{port}", alive)
    except BenchmarkError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
