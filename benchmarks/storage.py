"""Storage per machine per day: a simulated day of results, before and after the rollup.

    .venv/bin/python -m benchmarks.storage [--machines 100] [--database-url URL]

Fills a fresh database with one day of check results for `--machines` machines at the default
schedule (the 26 checks of agent/checks/registry.py at their default intervals; each result
carries the values its check declares, a one-line summary, the check's default thresholds and
its remediation hint, 2% of them failing), then runs the retention sweep
(collector/retention.py) as if `raw_days` had passed, so every raw result is folded into
hourly rollups and deleted. Prints bytes per machine per day: raw results, and rollups.

SQLite (the default, a temporary file): the file's growth, and the bytes of each table with its
indexes (dbstat). PostgreSQL (`--database-url postgresql+psycopg://...`, a fresh schema that
is dropped afterwards): pg_total_relation_size of check_results and check_rollups.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from agent.checks.registry import CHECKS
from collector import fleet
from collector.retention import RetentionSettings, retention_sweep
from collector.store.models import CheckResult, CheckRollup
from collector.store.runner import Store
from remdiag.vocabulary import CheckStatus

DAY_START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
FAILING_SHARE = 0.02
CHUNK = 5000


def schedule() -> list[tuple[str, int]]:
    """(check id, interval in seconds) of every registered check at its default interval."""
    return [(c.id, int(c.default_interval.total_seconds())) for c in CHECKS.values()]


def results_per_machine_day() -> int:
    return sum(86400 // interval for _, interval in schedule())


def fake_values(check_id: str, rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    """The values `check_id` declares, with plausible numbers, and a summary made of them."""
    values: list[dict[str, Any]] = []
    words = []
    for spec in CHECKS[check_id].emits:
        if spec.unit:
            number = round(rng.uniform(0, 100), 2)
            values.append({"name": spec.name, "value": number, "unit": spec.unit})
            words.append(f"{spec.name.replace('_', ' ')} {number} {spec.unit}")
        else:
            values.append({"name": spec.name, "value": rng.choice(["/", "eth0", "ok"]), "unit": ""})
    return ", ".join(words[:2]) or CHECKS[check_id].title, values


def thresholds_of(check_id: str) -> dict[str, Any]:
    model: Any = CHECKS[check_id].thresholds_type()
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


def fill(store: Store, machines: int, rng: random.Random) -> int:
    """One day of results for `machines` machines, in per-minute batches; rows written."""
    agent_ids = store.call(
        lambda s: [
            fleet.enroll(
                s,
                fleet.MachineInfo(
                    hostname=f"pc-{n}",
                    machine_id=f"bench-{n}",
                    os="Linux",
                    os_version="6.8",
                    architecture="x86_64",
                    agent_version="0.1.0",
                ),
                DAY_START,
            ).agent_id
            for n in range(machines)
        ]
    )
    plan = schedule()
    thresholds = {check_id: thresholds_of(check_id) for check_id, _ in plan}
    written = 0
    rows: list[dict[str, Any]] = []
    for agent_id in agent_ids:
        for minute in range(24 * 60):
            due = [check_id for check_id, interval in plan if (minute * 60) % interval == 0]
            at = DAY_START + timedelta(minutes=minute, seconds=rng.uniform(0, 50))
            for position, check_id in enumerate(due):
                check = CHECKS[check_id]
                failing = rng.random() < FAILING_SHARE
                summary, values = fake_values(check_id, rng)
                rows.append(
                    {
                        "agent_id": agent_id,
                        "sequence": minute + 1,
                        "position": position,
                        "check_id": check_id,
                        "category": int(check.category),
                        "status": int(CheckStatus.WARNING if failing else CheckStatus.OK),
                        "summary": summary,
                        "values": values,
                        "thresholds": thresholds[check_id],
                        "remediation": check.remediation if failing else "",
                        "observed_at": at,
                        "received_at": at + timedelta(seconds=1),
                    }
                )
            if len(rows) >= CHUNK:
                store.call(lambda s, chunk=rows: s.execute(insert(CheckResult), chunk))
                written += len(rows)
                rows = []
    if rows:
        store.call(lambda s: s.execute(insert(CheckResult), rows))
        written += len(rows)
    return written


def sqlite_sizes(store: Store, path: Path) -> dict[str, int]:
    with store.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        sizes = {
            table: int(
                connection.execute(
                    text(
                        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                        "(SELECT name FROM sqlite_master WHERE tbl_name = :t)"
                    ),
                    {"t": table},
                ).scalar_one()
            )
            for table in ("check_results", "check_rollups")
        }
    sizes["file"] = path.stat().st_size
    return sizes


def postgres_sizes(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            table: int(
                connection.execute(
                    text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
                ).scalar_one()
            )
            for table in ("check_results", "check_rollups")
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    per_day = results_per_machine_day()
    print(f"schedule: {len(CHECKS)} checks at their default intervals, {per_day} results a day")

    schema = ""
    tmp = tempfile.TemporaryDirectory(prefix="remdiag-storage-")
    if args.database_url:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(args.database_url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{separator}options=-csearch_path%3D{schema}"
        path = None
    else:
        path = Path(tmp.name) / "collector.db"
        url = f"sqlite:///{path}"
    store = Store(url)
    try:
        engine = store.engine.dialect.name
        before = sqlite_sizes(store, path) if path else postgres_sizes(store)
        started = time.perf_counter()
        written = fill(store, args.machines, rng)
        fill_s = time.perf_counter() - started
        if not path:
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE check_results"))
        raw = sqlite_sizes(store, path) if path else postgres_sizes(store)
        print(f"{engine}: {written} results for {args.machines} machines in {fill_s:.1f} s")

        settings = RetentionSettings()
        now = DAY_START + timedelta(days=settings.raw_days + 2)
        started = time.perf_counter()
        outcome = asyncio.run(retention_sweep(store, settings, now))
        sweep_s = time.perf_counter() - started
        left = store.call(lambda s: s.scalar(select(func.count()).select_from(CheckResult)))
        rollups = store.call(lambda s: s.scalar(select(func.count()).select_from(CheckRollup)))
        if path:
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM"))
        else:
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM FULL check_results"))
                c.execute(text("VACUUM FULL check_rollups"))
        after = sqlite_sizes(store, path) if path else postgres_sizes(store)
        rate = outcome.rolled_up / sweep_s if sweep_s else 0.0
        print(
            f"sweep: {outcome.rolled_up} results rolled up into {rollups} hourly rollups in "
            f"{sweep_s:.1f} s ({rate:,.0f} results/s, {outcome.batches} batches); "
            f"{left} raw left"
        )
        m = args.machines
        raw_table = raw["check_results"] - before["check_results"]
        rollup_table = after["check_rollups"] - before["check_rollups"]
        print(f"raw results:   {raw_table / m:,.0f} bytes per machine per day (table + indexes)")
        print(f"after rollup:  {rollup_table / m:,.0f} bytes per machine per day (table + indexes)")
        if path:
            print(
                f"SQLite file:   +{(raw['file'] - before['file']) / m:,.0f} bytes per machine "
                f"per day raw; {(after['file'] - before['file']) / m:,.0f} after rollup and VACUUM"
            )
        print(f"ratio: rollups take {rollup_table / raw_table:.3f} of the raw bytes")
    finally:
        store.close()
        if schema:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        tmp.cleanup()
        if args.database_url:
            print(f"database: {make_url(args.database_url).render_as_string(hide_password=True)}")


if __name__ == "__main__":
    main()
