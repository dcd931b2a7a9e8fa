"""Connected machines: N agents held by one collector, its memory and CPU, then a crash.

    .venv/bin/python -m benchmarks.connected [--agents 10000] [--processes 4]
        [--rate 0.1265] [--batch 26] [--settle 30] [--steady 60]
        [--restart-signal kill|term|int | --no-restart] [--agents-nice N]
        [--database-url postgresql+psycopg://...]

Issue 9, benchmark (b): 10,000 agents held by one collector process with heartbeats: RSS per
agent <= 40 KB, steady CPU <= 25% of one core; after a collector restart all of them are back
within 30 s and no result is lost.

It starts a real `remdiag collector serve` on 127.0.0.1 (SQLite in a temporary directory unless
--database-url). One warm-up agent enrolls, connects, has a batch acked and leaves, so code the
collector loads on first use counts in the baseline, not per agent; the baseline RSS is read a
few seconds later, idle. Then benchmarks/fleet.py's agents (each a real enrolled identity with
its own Connect stream and TCP connection) connect over --processes processes, heartbeat at
the interval Welcome gives and send batches of --batch results at --rate results a second each
(default: the real default schedule, 10,932 results a day; batches start at a random offset, so
they are spread evenly). After --settle seconds, the collector's CPU (all its threads) and RSS
are measured over --steady seconds: RSS per agent = (the highest RSS sampled in the window -
the baseline) / agents, in KB of 1024 bytes (the figure from the window's average is printed too).

Then the collector is killed (SIGKILL: a crash) while the agents keep sending, at a moment when
a batch is unacknowledged (so a resend is exercised), and a new one is started on the same port,
database and data dir. The figure: from the new process started to every agent holding a stream
again (each has had a Welcome from it). The agents reconnect as benchmarks/fleet.py does (as the
real agent: a fresh channel per attempt, full-jitter exponential backoff from 1 s up to 60 s),
send a full inventory and resend what the Welcome does not acknowledge. Unlike the
real agent they make no results while disconnected, so only batches in flight at the crash are
resent.

`--agents-nice N` runs the agents' processes N steps nicer: after the kill they would otherwise
spend most of the machine's cores on reconnect attempts while the new collector starts, which a
collector on a machine of its own never sees.

`--noop` holds the same fleet with benchmarks/noop_collector.py (a bare grpc.aio AgentService
that stores nothing) and prints the same memory and CPU figures: what gRPC alone costs, the floor
under the collector's. No restart, no tally.

No result lost: then the agents stop making batches and the benchmark waits until every batch
is acknowledged, stops agents and collector, and counts each agent's rows in check_results (by
hostname) against the results that agent put in its batches. Rows are unique on (agent,
sequence, position), so duplicates are 0 by construction; they are counted anyway.

Every connection is on 127.0.0.1. The collector needs a file descriptor per agent: the soft
limit is raised to the hard limit when it is lower than agents + 512.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

from benchmarks import noop_collector
from benchmarks.fleet import (
    Fleet,
    FleetAgent,
    FleetConfig,
    FleetCounters,
    add_fleet_arguments,
    fleet_config,
    running,
)
from benchmarks.simulated import (
    STARTUP_TIMEOUT_S,
    BenchmarkError,
    collector_process,
    command_line,
    cpu_seconds,
    free_port,
    load_line,
    log_tail,
    machine_line,
    stop,
    wait_listening,
)
from collector.config import CollectorSettings
from remdiag.configfile import ConfigError, load_settings

RSS_PER_AGENT_TARGET_KB = 40.0
CPU_TARGET = 0.25
"""Of one core."""
RECONNECT_TARGET_S = 30.0
RESULTS_PER_DAY = 10_932
"""The 26 checks of agent/checks/registry.py at their default intervals (benchmarks/storage.py)."""
DEFAULT_RATE = RESULTS_PER_DAY / 86_400
DEFAULT_BATCH = 26
SPARE_DESCRIPTORS = 512
"""Beyond one per agent: the database, logs, gRPC's own."""
IDLE_BEFORE_BASELINE_S = 3.0
KILL_NOTICED_TIMEOUT_S = 15.0
IN_FLIGHT_WAIT_S = 10.0
RESTART_SIGNALS = {"kill": "SIGKILL (a crash)", "term": "SIGTERM", "int": "SIGINT (a clean stop)"}


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the highest RSS the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_descriptor_limit(agents: int) -> str:
    """Soft RLIMIT_NOFILE up to the hard limit when agents need more; children inherit it."""
    need = agents + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if need > limit:
        raise BenchmarkError(
            f"{agents} agents need about {need} file descriptors in the collector; the hard "
            f"limit (ulimit -Hn) is {hard}: raise it (limits.conf, or LimitNOFILE= under "
            "systemd) or run fewer agents"
        )
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        return f"file descriptors: soft limit raised from {soft} to {limit} (need ~{need})"
    return f"file descriptors: soft limit {soft} (need ~{need})"


@dataclass
class Collector:
    """The collector process running now (the benchmark replaces it once)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> str | None:
        if self.process.poll() is None:
            return None
        return f"the collector exited ({self.process.returncode}):\n{log_tail(self.log_path)}"


def start_collector(
    stack: contextlib.ExitStack, port: int, url: str, workdir: Path, config: Path | None
) -> Collector:
    process, log_path = stack.enter_context(collector_process(port, url, workdir, config))
    return Collector(process, log_path)


def start_noop(stack: contextlib.ExitStack, port: int, workdir: Path) -> Collector:
    """benchmarks/noop_collector.py instead of the collector: gRPC's own share of the cost."""
    log_path = workdir / "noop.log"
    command = [sys.executable, "-m", "benchmarks.noop_collector", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(stop, process)
    return Collector(process, log_path)


def kib(amount: float) -> str:
    return f"{amount / 1024:,.1f} KB"


def mib(amount: float) -> str:
    return f"{amount / 2**20:,.1f} MiB"


def verdict(met: bool) -> str:
    return "PASS" if met else "FAIL"


# --- baseline ------------------------------------------------------------------------------


async def _warm_up(address: str, config: FleetConfig) -> None:
    """One agent enrolls, connects, has a batch acknowledged and leaves."""
    counters = FleetCounters.make(multiprocessing.get_context("spawn"), 1)
    agent = FleetAgent(0, address, replace(config, agents=1, rate=0.0), counters, random.Random(0))
    try:
        await agent.enroll()
        living = asyncio.create_task(agent.live(lambda: None))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while counters.acked.value == 0:
            if living.done():
                living.result()
            if time.monotonic() > deadline:
                raise BenchmarkError("warm-up agent: no batch acknowledged")
            await asyncio.sleep(0.05)
        living.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await living
    finally:
        await agent.close()


def baseline(collector: Collector, address: str, config: FleetConfig) -> tuple[int, float]:
    """RSS and CPU share of one core of the collector, idle, after the warm-up agent."""
    asyncio.run(_warm_up(address, replace(config, run_id=f"{config.run_id}w")))
    time.sleep(1.0)  # its disconnect recorded
    pid = collector.process.pid
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_BEFORE_BASELINE_S)
    if (trouble := collector.alive()) is not None:
        raise BenchmarkError(trouble)
    return rss_bytes(pid), (cpu_seconds(pid) - before) / (time.monotonic() - start)


# --- steady --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Steady:
    seconds: float
    cpu: float
    """Share of one core."""
    rss_max: int
    """The highest of the samples (one a second)."""
    rss_mean: int
    results_per_s: float
    reconnects: int
    online_min: int


def steady(
    fleet: Fleet, collector: Collector, settle_s: float, duration_s: float, agents: int
) -> Steady:
    counters = fleet.counters
    pid = collector.process.pid
    end_settle = time.monotonic() + settle_s
    while (left := end_settle - time.monotonic()) > 0:
        fleet.check(collector.alive)
        print(f"\r  settling: {left:4.0f} s left, {counters.online.value} online", end="")
        time.sleep(min(1.0, left))
    print()
    acked0, reconnects0 = counters.acked.value, counters.reconnects.value
    cpu0, start = cpu_seconds(pid), time.monotonic()
    samples: list[int] = []
    online_min = agents
    while (elapsed := time.monotonic() - start) < duration_s:
        time.sleep(min(1.0, duration_s - elapsed))
        fleet.check(collector.alive)
        rss = rss_bytes(pid)
        samples.append(rss)
        online_min = min(online_min, counters.online.value)
        elapsed = time.monotonic() - start
        print(
            f"\r  {elapsed:4.0f} s: collector CPU {100 * (cpu_seconds(pid) - cpu0) / elapsed:5.1f}%"
            f" of a core, RSS {mib(rss)}, {counters.online.value} online, "
            f"{(counters.acked.value - acked0) / elapsed:7.1f} results/s acked",
            end="",
            flush=True,
        )
    print()
    seconds = time.monotonic() - start
    return Steady(
        seconds=seconds,
        cpu=(cpu_seconds(pid) - cpu0) / seconds,
        rss_max=max(samples),
        rss_mean=int(statistics.fmean(samples)),
        results_per_s=(counters.acked.value - acked0) / seconds,
        reconnects=counters.reconnects.value - reconnects0,
        online_min=online_min,
    )


# --- restart -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    in_flight: int
    """Results sent and not acknowledged when the collector was stopped."""
    noticed_s: float
    """From the signal to no agent holding a stream."""
    listening_s: float
    """From the new process started to it accepting connections."""
    all_back_s: float | None
    """From the new process started to every agent holding a stream; None: not within time."""
    back: int
    reconnects: int
    cpu_s: float
    """CPU the new collector used from listening to every agent back (or the timeout)."""


def restart(
    fleet: Fleet,
    collector: Collector,
    stack: contextlib.ExitStack,
    port: int,
    url: str,
    workdir: Path,
    args: argparse.Namespace,
) -> tuple[Collector, Restart]:
    counters = fleet.counters
    agents = fleet.config.agents
    reconnects0 = counters.reconnects.value
    print(
        f"restart: stopping the collector (pid {collector.process.pid}) with "
        f"{RESTART_SIGNALS[args.restart_signal]}, {counters.online.value} agents online, "
        f"as soon as a batch is unacknowledged (waiting up to {IN_FLIGHT_WAIT_S:.0f} s)"
    )
    # Stop it amid a batch, so the resend path is exercised (acks take milliseconds).
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while counters.sent.value == counters.acked.value and time.monotonic() < deadline:
        time.sleep(0.001)
    stopped_at = time.monotonic()
    if args.restart_signal == "kill":
        collector.process.kill()
    elif args.restart_signal == "term":
        collector.process.terminate()
    else:
        collector.process.send_signal(signal.SIGINT)
    collector.process.wait()
    exited_s = time.monotonic() - stopped_at
    # Exact once it is gone: no ack can arrive any more.
    in_flight = counters.sent.value - counters.acked.value
    # Wait until the agents have seen their streams end, so "online" counts only new ones.
    while counters.online.value and time.monotonic() - stopped_at < KILL_NOTICED_TIMEOUT_S:
        time.sleep(0.05)
    noticed_s = time.monotonic() - stopped_at
    if counters.online.value:
        print(f"  {counters.online.value} agents still hold a stream to the dead collector")
    print(
        f"  collector exited after {exited_s:.1f} s (code {collector.process.returncode}) "
        f"with {in_flight} results unacknowledged; agents saw their streams end within "
        f"{noticed_s:.1f} s"
    )
    collector.log_path.rename(workdir / "collector-before-restart.log")
    started_at = time.monotonic()
    collector = start_collector(stack, port, url, workdir, args.collector_config)
    wait_listening(port, collector.alive, STARTUP_TIMEOUT_S)
    listening_s = time.monotonic() - started_at
    startup_cpu_s = cpu_seconds(collector.process.pid)
    print(f"  new collector pid {collector.process.pid} listening after {listening_s:.1f} s")
    all_back_s: float | None = None
    while (elapsed := time.monotonic() - started_at) < args.reconnect_timeout:
        fleet.check(collector.alive)
        online = counters.online.value
        if online >= agents:
            all_back_s = elapsed
            break
        print(f"\r  {elapsed:5.1f} s: {online}/{agents} agents back", end="", flush=True)
        time.sleep(0.1)
    back = counters.online.value
    cpu_s = cpu_seconds(collector.process.pid) - startup_cpu_s
    print(
        f"\r  {time.monotonic() - started_at:5.1f} s: {back}/{agents} agents back, "
        f"{counters.reconnects.value - reconnects0} reconnect attempts" + " " * 10
    )
    return collector, Restart(
        in_flight=in_flight,
        noticed_s=noticed_s,
        listening_s=listening_s,
        all_back_s=all_back_s,
        back=back,
        reconnects=counters.reconnects.value - reconnects0,
        cpu_s=cpu_s,
    )


# --- no result lost ------------------------------------------------------------------------


def drain(fleet: Fleet, collector: Collector, timeout_s: float) -> int:
    """Stops new batches and waits for every sent one to be acknowledged; returns the results
    still unacknowledged (0 when drained)."""
    counters = fleet.counters
    with counters.paused.get_lock():
        counters.paused.value = 1
    start = time.monotonic()
    while (pending := counters.sent.value - counters.acked.value) > 0:
        fleet.check(collector.alive)
        elapsed = time.monotonic() - start
        if elapsed > timeout_s:
            print()
            return pending
        print(f"\r  draining: {pending} results unacknowledged after {elapsed:.0f} s", end="")
        time.sleep(0.2)
    print(
        f"\r  drained: every batch acknowledged after {time.monotonic() - start:.1f} s" + " " * 20
    )
    return 0


@dataclass(frozen=True)
class Tally:
    generated: int
    stored: int
    """Distinct (sequence, position) rows."""
    lost: int
    unexpected: int
    """Rows beyond what the agent generated (should not exist)."""
    duplicates: int
    agents_short: int
    """Agents with fewer rows than results generated."""


def tally(url: str, run_id: str, generated: list[int]) -> Tally:
    """Each agent's rows in check_results against the results it put in its batches."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT a.hostname, COUNT(r.id), "
                    "COUNT(DISTINCT r.sequence * 100000 + r.position) "
                    "FROM agents a LEFT JOIN check_results r ON r.agent_id = a.id "
                    "WHERE a.hostname LIKE :prefix GROUP BY a.hostname"
                ),
                {"prefix": f"bench-{run_id}-%"},
            ).all()
    finally:
        engine.dispose()
    stored = [0] * len(generated)
    duplicates = 0
    for hostname, count, distinct in rows:
        stored[int(hostname.rsplit("-", 1)[1])] = distinct
        duplicates += count - distinct
    lost = sum(max(0, g - s) for g, s in zip(generated, stored, strict=True))
    return Tally(
        generated=sum(generated),
        stored=sum(stored),
        lost=lost,
        unexpected=sum(max(0, s - g) for g, s in zip(generated, stored, strict=True)),
        duplicates=duplicates,
        agents_short=sum(1 for g, s in zip(generated, stored, strict=True) if s < g),
    )


# --- the run -------------------------------------------------------------------------------


def run(
    args: argparse.Namespace, config: FleetConfig, workdir: Path, stack: contextlib.ExitStack
) -> bool:
    url = args.database_url or f"sqlite:///{workdir / 'collector.db'}"
    port = free_port()
    address = f"127.0.0.1:{port}"
    if args.noop:
        collector = start_noop(stack, port, workdir)
    else:
        collector = start_collector(stack, port, url, workdir, args.collector_config)
    wait_listening(port, collector.alive, STARTUP_TIMEOUT_S)
    print(
        f"{'no-op server' if args.noop else 'collector'} pid {collector.process.pid} on {address}"
    )
    rss_base, idle_cpu = baseline(collector, address, config)
    print(
        f"baseline (idle, after one warm-up agent): RSS {mib(rss_base)}, "
        f"CPU {100 * idle_cpu:.1f}% of a core"
    )
    agents = config.agents
    heartbeat_s = (
        noop_collector.HEARTBEAT_INTERVAL_S
        if args.noop
        else load_settings(CollectorSettings, args.collector_config).heartbeat_interval_seconds
    )
    fleet = stack.enter_context(running(address, config))
    connect_s = fleet.wait_connected(args.connect_timeout, collector.alive)
    print(
        f"  {agents / connect_s:.0f} agents/s enrolled and connected "
        f"({config.enroll_concurrency} at once per process)"
    )
    measured = steady(fleet, collector, args.settle, args.steady, agents)
    per_agent = (measured.rss_max - rss_base) / agents
    per_agent_mean = (measured.rss_mean - rss_base) / agents
    expected = agents * config.rate
    print(
        f"steady, {agents} agents over {measured.seconds:.0f} s: collector CPU "
        f"{100 * measured.cpu:.1f}% of one core; RSS {mib(measured.rss_max)} at most "
        f"({mib(measured.rss_mean)} on average, peak ever "
        f"{mib(peak_rss_bytes(collector.process.pid))})"
    )
    print(
        f"  {measured.results_per_s:,.1f} results/s acknowledged (sending {expected:,.1f}/s), "
        f"{agents / heartbeat_s:,.0f} heartbeats/s expected, "
        f"{measured.reconnects} reconnects, at least {measured.online_min} online"
    )
    print(
        f"  RSS per agent: (highest {mib(measured.rss_max)} - baseline {mib(rss_base)}) / "
        f"{agents} = {kib(per_agent)} ({kib(per_agent_mean)} from the average)"
    )
    passed = True
    met = per_agent <= RSS_PER_AGENT_TARGET_KB * 1024
    passed &= met
    lines = [
        f"target: RSS per agent <= {RSS_PER_AGENT_TARGET_KB:.0f} KB: {kib(per_agent)}: "
        f"{verdict(met)}"
    ]
    met = measured.cpu <= CPU_TARGET
    passed &= met
    lines.append(
        f"target: steady CPU <= {100 * CPU_TARGET:.0f}% of one core: "
        f"{100 * measured.cpu:.1f}%: {verdict(met)}"
    )
    if args.noop:
        fleet.stop()
        for line in lines:
            print(line.replace("target:", "no-op server, for comparison:"))
        return True
    if not args.no_restart:
        collector, restarted = restart(fleet, collector, stack, port, url, workdir, args)
        met = restarted.all_back_s is not None and restarted.all_back_s <= RECONNECT_TARGET_S
        passed &= met
        back = (
            f"{restarted.all_back_s:.1f} s"
            if restarted.all_back_s is not None
            else f"only {restarted.back}/{agents} after {args.reconnect_timeout:.0f} s"
        )
        print(
            f"restart: all {agents} back {back} after the new process started (listening after "
            f"{restarted.listening_s:.1f} s; {restarted.reconnects} reconnect attempts; "
            f"{restarted.in_flight} results were unacknowledged at the {args.restart_signal})"
        )
        print(
            f"  the new collector used {restarted.cpu_s:.1f} s of CPU from listening until then "
            f"({1000 * restarted.cpu_s / max(1, restarted.back):.1f} ms per agent back)"
        )
        lines.append(
            f"target: all {agents} back within {RECONNECT_TARGET_S:.0f} s of a restart: "
            f"{back}: {verdict(met)}"
        )
    pending = drain(fleet, collector, args.drain_timeout)
    fleet.stop()
    stack.close()  # the collector stops (SIGINT) before its database is read
    generated = list(fleet.counters.generated)
    counted = tally(url, config.run_id, generated)
    print(
        f"results: {counted.generated:,} generated, {counted.stored:,} stored, "
        f"{counted.lost:,} lost ({counted.agents_short} agents short), "
        f"{counted.duplicates} duplicate rows, {counted.unexpected} unexpected"
        + (f"; {pending:,} never acknowledged (drain timed out)" if pending else "")
    )
    met = counted.lost == 0 and counted.duplicates == 0 and counted.unexpected == 0
    passed &= met
    lines.append(
        f"target: no result lost{' across the restart' if not args.no_restart else ''}: "
        f"{counted.lost} lost, {counted.duplicates} duplicates: {verdict(met)}"
    )
    for line in lines:
        print(line)
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fleet_arguments(parser, agents=10_000)
    parser.set_defaults(processes=4, batch=DEFAULT_BATCH, rate=DEFAULT_RATE)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before measuring")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds to measure")
    parser.add_argument(
        "--restart-signal",
        choices=sorted(RESTART_SIGNALS),
        default="kill",
        help="how the collector is stopped before the restart (default kill: a crash)",
    )
    parser.add_argument("--no-restart", action="store_true", help="skip the restart")
    parser.add_argument(
        "--noop",
        action="store_true",
        help="hold the fleet with benchmarks/noop_collector.py instead (gRPC alone, nothing "
        "stored); memory and CPU only",
    )
    parser.add_argument(
        "--reconnect-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every agent to be back after the restart",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="seconds to wait for the last acks"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=3600.0, help="seconds to enroll and connect"
    )
    parser.add_argument(
        "--collector-config", type=Path, help="TOML config for the collector (its defaults)"
    )
    args = parser.parse_args()
    if args.rate <= 0:
        parser.error("--rate must be above 0 (results a second per agent)")
    config = fleet_config(parser, args, run_id=f"k{random.getrandbits(28):07x}")
    print(machine_line())
    print(load_line())
    print(command_line())
    store = "the given --database-url" if args.database_url else "SQLite"
    print(
        f"{config.agents} agents over {config.processes} process(es), batches of {config.batch} "
        f"at {config.rate:.4f} results/s per agent (a batch every {config.batch / config.rate:.0f}"
        f" s), failing share {config.failing}, store {store}"
    )
    try:
        print(raise_descriptor_limit(config.agents))
        with (
            tempfile.TemporaryDirectory(prefix="remdiag-connected-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            passed = run(args, config, Path(tmp), stack)
    except (BenchmarkError, ConfigError) as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0 if passed else 3)


if __name__ == "__main__":
    main()
