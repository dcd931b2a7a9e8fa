"""The store path alone: decode, convert and store result batches in one thread, no gRPC.

    .venv/bin/python -m benchmarks.store_path [--duration 20] [--agents 200] [--batch 100]
        [--group 50] [--failing-share 0.05] [--database-url postgresql+psycopg://...]

What a process that did nothing but ingest could reach: the same batches benchmarks/fleet.py
sends are parsed from their wire bytes, converted (collector/convert.py) and stored with the
ticket rules (collector/ingest.py) in groups of `--group` batches, one transaction each, as the
collector's intake writes them under load. It prints results/s and the time per result of the
two halves, so a change to either can be measured without the noise of a fleet and a server
sharing the machine's cores. SQLite in a temporary directory unless --database-url (a fresh,
empty database: the benchmark enrolls its own machines into it).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.orm import Session

from agent.checks.registry import CHECKS
from benchmarks.fleet import batch_body, with_sequence
from benchmarks.simulated import command_line, load_line, machine_line
from collector import convert, fleet
from collector.engine import TicketRules
from collector.ingest import Batch, ingest_batches
from collector.limits import LimitSettings
from collector.store.runner import Store
from remdiag.v1 import agent_pb2


def enroll(store: Store, count: int) -> list[str]:
    now = datetime.now(UTC)

    def one(n: int, session: Session) -> str:
        name = f"store-path-{n:05d}"
        return fleet.enroll(session, fleet.MachineInfo(name, name), now).agent_id

    return [store.call(partial(one, n)) for n in range(count)]


def run(store: Store, args: argparse.Namespace) -> None:
    agents = enroll(store, args.agents)
    rng = random.Random(1)
    failing = [frozenset(c for c in CHECKS if rng.random() < args.failing_share) for _ in agents]
    bodies = [batch_body(checks, args.batch, rng) for checks in failing]
    limits, rules = LimitSettings(), TicketRules()
    sequences = [0] * len(agents)
    converting = storing = 0.0
    results = 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.duration:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        group = []
        for _ in range(args.group):
            i = rng.randrange(len(agents))
            sequences[i] += 1
            message = agent_pb2.AgentMessage.FromString(with_sequence(sequences[i], bodies[i]))
            converted = convert.incoming_results(message.results, now, limits)
            group.append(Batch(agents[i], sequences[i], converted, now))
            results += len(converted)
        t1 = time.perf_counter()
        store.call(partial(ingest_batches, batches=group, rules=rules))
        converting += t1 - t0
        storing += time.perf_counter() - t1
    elapsed = time.perf_counter() - started
    print(
        f"{results / elapsed:,.0f} results/s over {elapsed:.0f} s ({results:,} results); "
        f"per result: decode and convert {converting / results * 1e6:.1f} us, "
        f"store and rules {storing / results * 1e6:.1f} us"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to measure")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="results per batch")
    parser.add_argument("--group", type=int, default=50, help="batches per transaction")
    parser.add_argument("--failing-share", type=float, default=0.05)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args(argv)
    print(machine_line())
    print(load_line())
    print(command_line())
    print(
        f"{args.agents} machines, batches of {args.batch}, {args.group} batches a transaction, "
        f"failing share {args.failing_share}, store "
        f"{'SQLite' if not args.database_url else args.database_url.split('://')[0]}"
    )
    with tempfile.TemporaryDirectory(prefix="remdiag-store-path-") as directory:
        store = Store(args.database_url or f"sqlite:///{directory}/collector.db")
        try:
            run(store, args)
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
