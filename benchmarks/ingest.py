"""Ingest: sustained check results a second into a real collector, against a no-op server.

    .venv/bin/python -m benchmarks.ingest [--agents 200] [--batch 100] [--window 2]
        [--duration 30] [--database-url postgresql+psycopg://...]

Runs benchmarks/fleet.py's agents twice with the same settings: first against
benchmarks/noop_collector.py (the same AgentService on grpc.aio, acknowledging every batch
without storing it: the physical limit of the transport and protobuf on this machine), then
against a real `remdiag collector serve` (decode, persist, ticket rules; SQLite in a temporary
directory unless --database-url). Agents send as fast as acknowledgements allow (--rate 0),
so the figure is the collector's ceiling. A result counts once its batch is acknowledged,
which the collector does after the batch's transaction committed.
Targets (issue 9, 2 cores): >= 50,000 results/s into SQLite; >= 0.35 of the no-op limit.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.fleet import (
    FleetConfig,
    Throughput,
    add_fleet_arguments,
    fleet_config,
    percentiles_ms,
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

SQLITE_TARGET = 50_000.0
RATIO_TARGET = 0.35


def drive(
    label: str,
    port: int,
    server_pid: int,
    config: FleetConfig,
    args: argparse.Namespace,
    alive: Callable[[], str | None],
) -> Throughput:
    wait_listening(port, alive, STARTUP_TIMEOUT_S)
    print(f"{label}: pid {server_pid} on 127.0.0.1:{port}; {config.agents} agents")
    with running(f"127.0.0.1:{port}", config) as fleet:
        fleet.wait_connected(args.connect_timeout, alive)
        before = cpu_seconds(server_pid)
        result = fleet.measure(args.warmup, args.duration, alive)
        busy = (cpu_seconds(server_pid) - before) / result.seconds
        latency = percentiles_ms(fleet.stop())
    print(
        f"{label}: {result.results_per_s:,.0f} results/s over {result.seconds:.0f} s "
        f"({result.acked:,} results, {result.reconnects} reconnects); server CPU "
        f"{100 * busy:.0f}% of one core"
        + (
            f"; batch send -> ack p50 {latency[0]:.0f} ms, p99 {latency[1]:.0f} ms"
            if latency
            else ""
        )
    )
    return result


def noop_limit(config: FleetConfig, args: argparse.Namespace) -> Throughput:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.noop_collector", "--port", str(port)]
    server = subprocess.Popen(command)
    try:
        return drive(
            "no-op server",
            port,
            server.pid,
            config,
            args,
            lambda: None if server.poll() is None else f"no-op server exited {server.returncode}",
        )
    finally:
        stop(server)


def collector_rate(config: FleetConfig, args: argparse.Namespace, workdir: Path) -> Throughput:
    url = args.database_url or f"sqlite:///{workdir / 'collector.db'}"
    port = free_port()
    with collector_process(port, url, workdir) as (collector, log_path):

        def alive() -> str | None:
            if collector.poll() is None:
                return None
            return f"the collector exited ({collector.returncode}):\n{log_tail(log_path)}"

        return drive("collector", port, collector.pid, config, args, alive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fleet_arguments(parser, agents=200)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to measure")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--skip-noop", action="store_true", help="only the real collector")
    args = parser.parse_args()
    if args.rate:
        parser.error("ingest measures the ceiling: leave --rate at 0")
    print(machine_line())
    print(load_line())
    print(command_line())
    store = "the given --database-url" if args.database_url else "SQLite"
    print(
        f"{args.agents} agents over {args.processes} process(es), batches of {args.batch}, "
        f"window {args.window}, failing share {args.failing}, store {store}"
    )
    try:
        limit = None
        if not args.skip_noop:
            limit = noop_limit(fleet_config(parser, args, f"n{random.getrandbits(28):07x}"), args)
        with tempfile.TemporaryDirectory(prefix="remdiag-ingest-") as tmp:
            real = collector_rate(
                fleet_config(parser, args, f"c{random.getrandbits(28):07x}"), args, Path(tmp)
            )
    except BenchmarkError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    passed = True
    if not args.database_url:
        met = real.results_per_s >= SQLITE_TARGET
        passed &= met
        print(
            f"target: >= {SQLITE_TARGET:,.0f} results/s into SQLite: "
            f"{real.results_per_s:,.0f} ({real.results_per_s / SQLITE_TARGET:.2f} of it): "
            f"{'PASS' if met else 'FAIL'}"
        )
    if limit is not None:
        ratio = real.results_per_s / limit.results_per_s
        met = ratio >= RATIO_TARGET
        passed &= met
        print(
            f"target: >= {RATIO_TARGET} of the no-op limit ({limit.results_per_s:,.0f}/s): "
            f"{ratio:.3f}: {'PASS' if met else 'FAIL'}"
        )
    sys.exit(0 if passed else 3)


if __name__ == "__main__":
    main()
