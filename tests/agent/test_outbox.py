"""agent/outbox.py: the SQLite spool: order, sequences, acks, resend, restarts, crashes, bounds."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks.base import Measured
from agent.outbox import SPOOL_FILE, Outbox, decode_run, encode_run
from agent.runner import CheckRun
from remdiag.vocabulary import Category, CheckStatus

ROOT = Path(__file__).resolve().parents[2]


def run(n: int, summary: str | None = None) -> CheckRun:
    return CheckRun(
        check_id=f"check.{n}",
        category=Category.HARDWARE,
        status=CheckStatus.OK,
        summary=str(n) if summary is None else summary,
        values=(),
        thresholds={},
        remediation="",
        observed_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=n),
    )


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "state" / SPOOL_FILE


def summaries(outbox: Outbox, through: int = 1000) -> list[str]:
    """Everything the outbox holds, in the order it would send it (taking it into batches)."""
    held = [r.summary for b in outbox.resume(0) for r in b.results]
    while (batch := outbox.next_batch(through)) is not None:
        held += [r.summary for r in batch.results]
    return held


def test_a_result_comes_back_as_it_went_in() -> None:
    original = CheckRun(
        check_id="disk.free_space",
        category=Category.HARDWARE,
        status=CheckStatus.CRITICAL,
        summary="/ is 97 % full — 1.2 GiB free",
        values=(
            Measured("used_percent", 97.25, "%"),
            Measured("free_gib", float("inf"), "GiB"),
            Measured("mount", "/", ""),
            Measured("count", 3, ""),
        ),
        thresholds={"paths": ["/"], "max_used_percent_warning": 85, "ratio": 0.5},
        remediation="Free some space.",
        observed_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
    )
    assert decode_run(encode_run(original)) == original


def test_a_string_that_cannot_travel_is_made_safe() -> None:
    """A lone surrogate (an undecodable file name) would fail to encode for the wire forever."""
    decoded = decode_run(encode_run(run(1, summary="bad \udcff name")))
    assert decoded.summary == "bad ? name"


def test_batches_take_sequences_in_order_and_leave_on_ack(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100)
    for n in range(5):
        outbox.add(run(n))
    first = outbox.next_batch(3)
    second = outbox.next_batch(3)
    assert first is not None and second is not None
    assert (first.sequence, second.sequence) == (1, 2)
    assert [r.summary for r in first.results + second.results] == ["0", "1", "2", "3", "4"]
    assert outbox.next_batch(3) is None
    assert len(outbox) == 5 and outbox.pending == 0 and outbox.in_flight == 2
    outbox.ack(1)
    assert len(outbox) == 2 and outbox.in_flight == 1
    outbox.ack(2)
    assert len(outbox) == 0 and outbox.bytes == 0
    outbox.close()


def test_resume_resends_only_what_the_collector_lacks(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100)
    for n in range(3):
        outbox.add(run(n))
        outbox.next_batch(10)
    resend = outbox.resume(acked_through=1)
    assert [b.sequence for b in resend] == [2, 3]
    assert [r.summary for b in resend for r in b.results] == ["1", "2"]


def test_resume_after_restart_continues_past_the_collectors_sequence(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100)
    assert outbox.resume(acked_through=41) == []
    outbox.add(run(0))
    batch = outbox.next_batch(10)
    assert batch is not None and batch.sequence == 42
    assert outbox.reserve_sequence() == 43
    outbox.close()
    assert Outbox(spool).last_sequence == 43


def test_everything_survives_a_restart(spool: Path) -> None:
    outbox = Outbox(spool, max_results=10)
    for n in range(14):
        outbox.add(run(n))  # 4 dropped
    sent = outbox.next_batch(3)
    refused = outbox.next_batch(2)
    assert sent is not None and refused is not None
    outbox.reject(refused.sequence)
    outbox.close()

    again = Outbox(spool, max_results=10)
    assert (again.dropped, again.rejected, again.last_sequence) == (4, 2, 2)
    assert (len(again), again.pending, again.in_flight) == (8, 5, 1)
    # The batch made before the restart goes out again: same sequence, same results, same order.
    (resent,) = again.resume(acked_through=0)
    assert resent == sent
    batch = again.next_batch(100)
    assert batch is not None and batch.sequence == 3
    assert [r.summary for r in batch.results] == ["9", "10", "11", "12", "13"]


def test_reopening_without_close_loses_nothing(spool: Path) -> None:
    """What a crash leaves: the first outbox is never closed, a second one opens the file."""
    crashed = Outbox(spool, max_results=100)
    for n in range(6):
        crashed.add(run(n))
    batch = crashed.next_batch(4)
    assert batch is not None
    crashed.ack(0)

    survivor = Outbox(spool, max_results=100)
    assert (len(survivor), survivor.pending, survivor.in_flight) == (6, 2, 1)
    assert survivor.resume(0) == [batch]
    assert summaries(survivor) == [str(n) for n in range(6)]
    crashed.close()


CHILD = """
import sys
from pathlib import Path
from agent.outbox import Outbox
from tests.agent.test_outbox import run

outbox = Outbox(Path(sys.argv[1]), max_results=100_000)
n = 0
while True:
    outbox.add(run(n))
    n += 1
    if n % 50 == 0:
        batch = outbox.next_batch(30)
        print("batch", batch.sequence, batch.results[0].summary, batch.results[-1].summary)
    print("added", n, flush=True)
"""


def test_kill_9_while_adding_keeps_every_result_add_returned(spool: Path) -> None:
    """A real process adding results and making batches, killed with SIGKILL mid-stream."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(spool)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    added, batches = 0, {}
    try:
        for line in child.stdout:
            word, *rest = line.split()
            if word == "batch":
                batches[int(rest[0])] = (rest[1], rest[2])
            else:
                added = int(rest[0])
            if added >= 1000:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

    outbox = Outbox(spool, max_results=100_000)
    resent = outbox.resume(acked_through=0)
    # Batches keep their sequence and members; nothing add() returned is missing.
    kept = {b.sequence: (b.results[0].summary, b.results[-1].summary) for b in resent}
    assert batches and {s: kept[s] for s in batches} == batches
    # One more batch may have been made between the last line read and the kill.
    assert all(s > max(batches) for s in kept.keys() - batches.keys())
    held = summaries(outbox)
    assert len(held) >= added
    assert held == [str(n) for n in range(len(held))]


def test_full_outbox_drops_oldest_pending_and_counts_across_restarts(spool: Path) -> None:
    outbox = Outbox(spool, max_results=10)
    for n in range(15):
        outbox.add(run(n))
    assert len(outbox) == 10
    assert outbox.dropped == 5
    outbox.close()
    again = Outbox(spool, max_results=10)
    for n in range(15, 18):
        again.add(run(n))
    assert again.dropped == 8
    assert summaries(again) == [str(n) for n in range(8, 18)]


def test_bound_by_bytes_drops_oldest(spool: Path) -> None:
    size = len(encode_run(run(0, summary="x" * 1000)))
    outbox = Outbox(spool, max_results=1000, max_bytes=size * 5 + size // 2)
    for n in range(12):
        outbox.add(run(n, summary=f"{n:04d}" + "x" * 996))
    assert len(outbox) == 5
    assert outbox.bytes <= size * 5 + size // 2
    assert outbox.dropped == 7
    assert [s[:4] for s in summaries(outbox)] == ["0007", "0008", "0009", "0010", "0011"]


def test_in_flight_batches_go_only_when_they_alone_exceed_the_bound(spool: Path) -> None:
    outbox = Outbox(spool, max_results=10)
    for n in range(8):
        outbox.add(run(n))
    first = outbox.next_batch(4)
    second = outbox.next_batch(4)
    assert first is not None and second is not None
    for n in range(8, 12):
        outbox.add(run(n))  # the newest pending give way first: nothing older is pending
    assert (outbox.in_flight, outbox.pending, outbox.dropped) == (2, 2, 2)
    outbox.close()
    # Bounds lowered below what is in flight: the oldest batch goes, whole, and is counted.
    smaller = Outbox(spool, max_results=5)
    assert smaller.dropped == 2 + 2 + 4
    assert [b.sequence for b in smaller.resume(0)] == [second.sequence]
    assert len(smaller) == 4


def test_the_file_gives_its_space_back_once_drained(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100_000)
    for n in range(5_000):
        outbox.add(run(n, summary="x" * 500))
    peak = spool.stat().st_size
    while (batch := outbox.next_batch(500)) is not None:
        outbox.ack(batch.sequence)
    assert spool.stat().st_size < peak // 10
    outbox.add(run(0))  # and goes on working
    assert len(outbox) == 1


def test_a_rejected_batch_leaves_and_is_counted(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100)
    for n in range(4):
        outbox.add(run(n))
    first = outbox.next_batch(2)
    second = outbox.next_batch(2)
    assert first is not None and second is not None
    assert outbox.reject(first.sequence) == 2
    assert outbox.reject(first.sequence) == 0
    assert outbox.rejected == 2
    assert [b.sequence for b in outbox.resume(acked_through=0)] == [second.sequence]


def test_threads_add_while_batches_are_taken_and_acked(spool: Path) -> None:
    outbox = Outbox(spool, max_results=100_000)
    threads, per_thread = 4, 300

    def produce(t: int) -> None:
        for n in range(per_thread):
            outbox.add(run(n, summary=f"{t}-{n}"))

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    seen: list[str] = []
    sequences: list[int] = []
    while any(w.is_alive() for w in workers) or outbox.pending:
        batch = outbox.next_batch(25)
        if batch is not None:
            seen += [r.summary for r in batch.results]
            sequences.append(batch.sequence)
            outbox.ack(batch.sequence)
    for worker in workers:
        worker.join()
    assert sorted(seen) == sorted(f"{t}-{n}" for t in range(threads) for n in range(per_thread))
    assert sequences == list(range(1, len(sequences) + 1))
    for t in range(threads):  # each thread's results leave in the order they were added
        assert [s for s in seen if s.startswith(f"{t}-")] == [f"{t}-{n}" for n in range(per_thread)]
    assert len(outbox) == 0 and outbox.bytes == 0


def test_spool_is_readable_by_its_owner_only(spool: Path) -> None:
    Outbox(spool).add(run(0))
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o600


def test_an_unreadable_spool_is_set_aside_and_the_agent_starts_empty(spool: Path) -> None:
    spool.parent.mkdir(parents=True)
    spool.write_bytes(b"this is not a database" * 100)
    outbox = Outbox(spool)
    assert len(outbox) == 0
    outbox.add(run(0))
    (aside,) = spool.parent.glob(f"{SPOOL_FILE}.unreadable-*")
    assert aside.read_bytes().startswith(b"this is not a database")


def test_an_unreadable_result_is_dropped_and_counted_not_sent_forever(spool: Path) -> None:
    import sqlite3

    outbox = Outbox(spool)
    for n in range(3):
        outbox.add(run(n))
    with sqlite3.connect(spool) as db:
        db.execute("UPDATE results SET body = x'7b' WHERE id = 2")
    db.close()
    batch = outbox.next_batch(10)
    assert batch is not None
    assert [r.summary for r in batch.results] == ["0", "2"]
    assert outbox.dropped == 1 and len(outbox) == 2
