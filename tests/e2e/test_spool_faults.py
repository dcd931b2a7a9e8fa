"""Faults with real processes: collector or agent killed mid-stream, collector away, full spool.

The collector (`remdiag collector serve`) and the agent (`remdiag-agent run`) run as separate
processes on loopback, on real SQLite files; the agent is killed with SIGKILL. Results "measured
while offline" are written into the agent's spool with the Outbox API before it starts. The
test reads both files directly (read-only while their owners run) and prints its figures
(run with -s to see them). Last, how the collector keeps the drop count agents report.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from agent.checks.base import Measured
from agent.outbox import SPOOL_FILE, Outbox, decode_run
from agent.runner import CheckRun
from collector import fleet
from collector.store.models import Agent as AgentRow
from collector.store.models import CheckResult
from collector.store.runner import Store
from remdiag.vocabulary import Category, CheckStatus
from tests.collector.factories import NOW, enrolled, machine
from tests.support import LOOPBACK_CHECKS, eventually, free_port

pytestmark = pytest.mark.timeout(90)

BIN = Path(sys.executable).parent
DISK = "disk.free_space"
# A result as both ends can name it: the agent keeps no id that survives the wire.
Key = tuple[str, datetime, str]
Spawn = Callable[[list[str], str], "subprocess.Popen[bytes]"]


# -- processes ---------------------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start processes logging to tmp_path; whatever still runs at the end is killed."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMDIAG_")}

    def start(args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / log_name).open("ab")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def kill_9(process: subprocess.Popen[bytes]) -> None:
    process.kill()  # SIGKILL
    process.wait()


async def start_collector(spawn: Spawn, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    config = tmp_path / "collector.toml"
    # Heartbeats every second, so a spool's drop count travels soon after it changes.
    config.write_text("heartbeat_interval_seconds = 1\n")
    process = spawn(
        [
            str(BIN / "remdiag"),
            "collector",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--database-url",
            f"sqlite:///{tmp_path / 'collector.db'}",
        ],
        "collector.log",
    )
    await eventually(lambda: _listening(port, process), "the collector to listen", 30)
    return process


async def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the collector exited"
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def agent_config(tmp_path: Path, **options: Any) -> Path:
    """A config whose network checks stay on loopback and whose disk check runs every second."""
    checks = {
        **LOOPBACK_CHECKS,
        DISK: {"interval_seconds": 1, "thresholds": {"paths": [str(tmp_path)]}},
    }
    settings = {
        "batch_max_delay_seconds": 0.05,
        "reconnect_initial_seconds": 0.1,
        "reconnect_max_seconds": 0.5,
        **options,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    for check_id, check in checks.items():
        lines.append(f'[checks."{check_id}"]')
        lines += [f"{key} = {_toml(value)}" for key, value in check.items()]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers and lists of them read the same in TOML


def start_agent(spawn: Spawn, config: Path, state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return spawn(
        [
            str(BIN / "remdiag-agent"),
            "run",
            "--config",
            str(config),
            "--collector",
            f"127.0.0.1:{port}",
            "--state-dir",
            str(state_dir),
        ],
        "agent.log",
    )


# -- the agent's spool -------------------------------------------------------------------


def prefill(state_dir: Path, count: int, max_results: int) -> list[Key]:
    """Results measured while offline, written into the spool before the agent starts."""
    start = datetime.now(UTC) - timedelta(hours=1)
    keys: list[Key] = []
    with Outbox(state_dir / SPOOL_FILE, max_results=max_results) as outbox:
        for n in range(count):
            run = CheckRun(
                check_id=DISK,
                category=Category.HARDWARE,
                status=CheckStatus.OK,
                summary=f"spooled {n}",
                values=(Measured("used_percent", 50.0, "%"),),
                thresholds={"paths": ["/"]},
                remediation="",
                observed_at=start + timedelta(milliseconds=n),
            )
            outbox.add(run)
            keys.append(key_of(run))
    return keys


def key_of(run: CheckRun) -> Key:
    return (run.check_id, run.observed_at, run.summary)


@dataclass(frozen=True)
class Spool:
    """What the spool file holds, read without disturbing the agent that writes it."""

    results: int
    held: dict[Key, int | None]
    """Each result and its batch's sequence (None while pending); empty unless asked for."""
    batches: int
    dropped: int
    rejected: int


def read_spool(state_dir: Path, with_results: bool = True) -> Spool:
    db = sqlite3.connect(f"file:{state_dir / SPOOL_FILE}?mode=ro", uri=True)
    try:
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        (batches,) = db.execute("SELECT count(*) FROM batches").fetchone()
        (results,) = db.execute("SELECT count(*) FROM results").fetchone()
        held: dict[Key, int | None] = {}
        if with_results:
            for batch, body in db.execute("SELECT batch, body FROM results"):
                held[key_of(decode_run(body))] = batch
    finally:
        db.close()
    return Spool(results, held, batches, counters.get("dropped", 0), counters.get("rejected", 0))


# -- the collector's database ------------------------------------------------------------


class CollectorDb:
    """Reads the collector's SQLite file while the collector runs (WAL lets readers in)."""

    def __init__(self, path: Path) -> None:
        self.engine = create_engine(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    def stored(self) -> Counter[Key]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(CheckResult.check_id, CheckResult.observed_at, CheckResult.summary)
            )
            return Counter((r[0], r[1], r[2]) for r in rows)

    def count(self, summary_prefix: str = "") -> int:
        with Session(self.engine) as session:
            count = session.scalar(
                select(func.count())
                .select_from(CheckResult)
                .where(CheckResult.summary.startswith(summary_prefix))
            )
            return count or 0

    def agent(self) -> AgentRow | None:
        with Session(self.engine) as session:
            return session.scalars(select(AgentRow)).one_or_none()


@pytest.fixture
def collector_db(tmp_path: Path) -> Iterator[CollectorDb]:
    db = CollectorDb(tmp_path / "collector.db")
    yield db
    db.close()


@dataclass(frozen=True)
class Account:
    """Every result the agent produced, where it ended up."""

    produced: int
    sent: int
    """Left the spool for the collector (produced, less what waits and what was dropped)."""
    stored: int
    duplicates: int
    waiting: int
    dropped: int


def account(db: CollectorDb, spool: Spool) -> Account:
    """After the agent stopped: nothing stored twice, and what waits was not yet stored.

    A result still in the spool may already be stored only if its batch is at or below the
    collector's acked sequence (sent and stored, the ack not yet read): that batch is then a
    resend the collector ignores.
    """
    stored = db.stored()
    agent = db.agent()
    assert agent is not None
    duplicates = sum(n - 1 for n in stored.values())
    for key, batch in spool.held.items():
        if key in stored:
            assert batch is not None and batch <= agent.last_sequence, key
    waiting = [k for k in spool.held if k not in stored]
    return Account(
        produced=len(stored) + len(waiting) + spool.dropped,
        sent=len(stored),
        stored=sum(stored.values()),
        duplicates=duplicates,
        waiting=len(waiting),
        dropped=spool.dropped,
    )


def figures(title: str, **values: Any) -> None:
    print(f"\n{title}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


# -- the faults --------------------------------------------------------------------------


async def test_agent_killed_mid_batch_and_restarted_stores_each_result_once(
    tmp_path: Path, spawn: Spawn, collector_db: CollectorDb
) -> None:
    spooled, bound = 10_000, 50_000
    port = free_port()
    state_dir = tmp_path / "agent"
    await start_collector(spawn, tmp_path, port)
    prefilled = prefill(state_dir, spooled, bound)
    config = agent_config(tmp_path, outbox_max_results=bound, batch_max_results=50)

    agent = start_agent(spawn, config, state_dir, port)
    await eventually(
        lambda: _async(collector_db.count("spooled ") >= 500), "the drain to be under way"
    )
    kill_9(agent)
    at_kill = read_spool(state_dir)
    # Once the collector has seen the stream end, it has stored all it will of that stream.
    await eventually(
        lambda: _async(not getattr(collector_db.agent(), "connected", True)),
        "the collector to notice the agent is gone",
    )
    stored_at_kill = collector_db.stored()
    assert len(stored_at_kill) < spooled, "the agent was to be killed while it still drained"
    # Sent and stored, but the agent died before it read the ack: these go out again.
    stored_and_held = sum(1 for k in at_kill.held if k in stored_at_kill)

    agent = start_agent(spawn, config, state_dir, port)
    await eventually(
        lambda: _async(
            collector_db.count("spooled ") >= spooled
            and not read_spool(state_dir, with_results=False).results
        ),
        "the spool to drain after the restart",
    )
    kill_9(agent)
    final = account(collector_db, read_spool(state_dir))
    stored = collector_db.stored()

    assert all(stored[k] == 1 for k in prefilled)
    assert all(stored[k] == 1 for k in at_kill.held)  # what the killed agent held arrived once
    assert final.duplicates == 0
    assert final.dropped == 0 and read_spool(state_dir).rejected == 0
    assert final.stored == final.sent == final.produced - final.waiting - final.dropped
    figures(
        "b. agent killed mid-batch",
        spooled_offline=spooled,
        produced_by_checks=final.produced - spooled,
        sent=final.sent,
        stored_before_kill=len(stored_at_kill),
        held_at_kill=at_kill.results,
        batches_in_flight_at_kill=at_kill.batches,
        resent_though_stored=stored_and_held,
        stored=final.stored,
        duplicates=final.duplicates,
        dropped=final.dropped,
        waiting_at_end=final.waiting,
    )


async def test_collector_killed_mid_stream_and_restarted_stores_each_result_once(
    tmp_path: Path, spawn: Spawn, collector_db: CollectorDb
) -> None:
    """Fault a: kill -9 the collector while an agent streams 10,000 results; restart it."""
    spooled, bound = 10_000, 50_000
    port = free_port()
    state_dir = tmp_path / "agent"
    collector = await start_collector(spawn, tmp_path, port)
    prefilled = prefill(state_dir, spooled, bound)
    config = agent_config(tmp_path, outbox_max_results=bound, batch_max_results=50)
    agent = start_agent(spawn, config, state_dir, port)
    await eventually(
        lambda: _async(collector_db.count("spooled ") >= 500), "the stream to be under way"
    )
    kill_9(collector)
    stored_at_kill = collector_db.stored()
    assert len(stored_at_kill) < spooled, "the collector was to be killed mid-stream"

    await start_collector(spawn, tmp_path, port)
    await eventually(
        lambda: _async(
            collector_db.count("spooled ") >= spooled
            and not read_spool(state_dir, with_results=False).results
        ),
        "the spool to drain into the restarted collector",
    )
    kill_9(agent)
    final = account(collector_db, read_spool(state_dir))
    stored = collector_db.stored()
    assert all(stored[k] == 1 for k in prefilled)
    assert final.duplicates == 0
    assert final.dropped == 0
    assert final.stored == final.sent == final.produced - final.waiting
    figures(
        "a. collector killed mid-stream",
        spooled_offline=spooled,
        produced_by_checks=final.produced - spooled,
        stored_before_kill=len(stored_at_kill),
        sent=final.sent,
        stored=final.stored,
        duplicates=final.duplicates,
        dropped=final.dropped,
        waiting_at_end=final.waiting,
    )


async def test_collector_stopped_with_sigterm_mid_stream_exits_cleanly_and_loses_nothing(
    tmp_path: Path, spawn: Spawn, collector_db: CollectorDb
) -> None:
    """SIGTERM (what systemd sends) stops the collector as Ctrl-C does: exit status 0, streams
    closed, nothing half-written; the agent resends what was not acked to the next collector."""
    spooled, bound = 3_000, 50_000
    port = free_port()
    state_dir = tmp_path / "agent"
    collector = await start_collector(spawn, tmp_path, port)
    prefilled = prefill(state_dir, spooled, bound)
    config = agent_config(tmp_path, outbox_max_results=bound, batch_max_results=50)
    agent = start_agent(spawn, config, state_dir, port)
    await eventually(
        lambda: _async(collector_db.count("spooled ") >= 200), "the stream to be under way"
    )
    collector.terminate()  # SIGTERM
    assert await asyncio.to_thread(collector.wait, 30) == 0
    assert "stopping: closing streams and the store" in (tmp_path / "collector.log").read_text()

    await start_collector(spawn, tmp_path, port)
    await eventually(
        lambda: _async(
            collector_db.count("spooled ") >= spooled
            and not read_spool(state_dir, with_results=False).results
        ),
        "the spool to drain into the restarted collector",
    )
    kill_9(agent)
    stored = collector_db.stored()
    assert all(stored[k] == 1 for k in prefilled)


async def test_collector_away_agent_spools_then_drains_everything(
    tmp_path: Path, spawn: Spawn, collector_db: CollectorDb
) -> None:
    spooled = 2_000
    port = free_port()
    state_dir = tmp_path / "agent"
    prefilled = prefill(state_dir, spooled, 10_000)
    agent = start_agent(spawn, agent_config(tmp_path), state_dir, port)
    log = tmp_path / "agent.log"

    # Nobody listens: the agent keeps measuring into its spool and keeps trying.
    await eventually(
        lambda: _async(
            log.read_text().count("reconnecting in") >= 3
            and read_spool(state_dir, with_results=False).results >= spooled + 10
        ),
        "the agent to spool while the collector is away",
    )
    offline = read_spool(state_dir)

    await start_collector(spawn, tmp_path, port)
    await eventually(
        lambda: _async(
            collector_db.count("spooled ") >= spooled
            and not read_spool(state_dir, with_results=False).results
        ),
        "the spool to drain",
    )
    kill_9(agent)
    final = account(collector_db, read_spool(state_dir))
    stored = collector_db.stored()

    assert all(stored[k] == 1 for k in prefilled)
    assert all(stored[k] == 1 for k in offline.held)  # everything spooled while away, once
    assert final.duplicates == 0 and final.dropped == 0
    assert final.stored == final.sent == final.produced - final.waiting - final.dropped
    figures(
        "c. collector away",
        spooled_offline=spooled,
        held_when_collector_started=offline.results,
        produced=final.produced,
        sent=final.sent,
        stored=final.stored,
        duplicates=final.duplicates,
        dropped=final.dropped,
        waiting_at_end=final.waiting,
    )


async def test_full_spool_drops_oldest_and_the_count_reaches_the_collector(
    tmp_path: Path, spawn: Spawn, collector_db: CollectorDb
) -> None:
    spooled, bound = 500, 100
    port = free_port()
    state_dir = tmp_path / "agent"
    prefill(state_dir, spooled, bound)
    assert read_spool(state_dir).dropped == spooled - bound
    agent = start_agent(spawn, agent_config(tmp_path, outbox_max_results=bound), state_dir, port)

    # The collector is away and the full spool keeps dropping its oldest as checks run.
    await eventually(
        lambda: _async(read_spool(state_dir, with_results=False).dropped >= spooled - bound + 20),
        "the full spool to drop more",
    )
    await start_collector(spawn, tmp_path, port)

    async def reported() -> int | None:
        row = collector_db.agent()
        spool = read_spool(state_dir, with_results=False)
        if row is not None and not spool.results and row.spool_dropped == spool.dropped:
            return spool.dropped
        return None

    await eventually(reported, "the drop count to reach the collector")
    kill_9(agent)
    final = account(collector_db, read_spool(state_dir))
    row = collector_db.agent()
    assert row is not None

    assert row.spool_dropped == final.dropped
    survivors = sorted(
        int(k[2].split()[1]) for k in collector_db.stored() if k[2].startswith("spooled ")
    )
    # Oldest first: what arrived of the offline results is their newest end, without a gap.
    assert survivors == list(range(spooled - len(survivors), spooled))
    assert len(survivors) <= bound - 20
    assert final.duplicates == 0
    assert final.stored == final.sent == final.produced - final.waiting - final.dropped
    figures(
        "d. spool full",
        bound=bound,
        spooled_offline=spooled,
        produced=final.produced,
        sent=final.sent,
        stored=final.stored,
        offline_results_stored=len(survivors),
        duplicates=final.duplicates,
        dropped_by_agent=final.dropped,
        spool_dropped_on_collector=row.spool_dropped,
    )


def test_the_reported_drop_count_only_grows_and_fits_its_column(store_url: str) -> None:
    store = Store(store_url)
    try:
        agent_id = store.call(lambda s: enrolled(s).agent_id)

        def dropped() -> int:
            return store.call(lambda s: s.get_one(AgentRow, agent_id).spool_dropped)

        assert dropped() == 0
        store.call(lambda s: fleet.connected(s, agent_id, machine(), NOW, 7))
        assert dropped() == 7
        store.call(lambda s: fleet.heartbeat(s, agent_id, NOW, 9))
        assert dropped() == 9
        store.call(lambda s: fleet.heartbeat(s, agent_id, NOW, 3))  # a reinstalled agent
        store.call(lambda s: fleet.connected(s, agent_id, machine(), NOW, 0))
        assert dropped() == 9
        store.call(lambda s: fleet.heartbeat(s, agent_id, NOW, 2**64 - 1))  # uint64 on the wire
        assert dropped() == 2**63 - 1
    finally:
        store.close()


async def _async(value: bool) -> bool:
    return value
