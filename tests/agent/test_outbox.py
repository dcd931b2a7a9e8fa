"""agent/outbox.py: batching, sequence numbers, acks, resend after reconnect and the bound."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.outbox import Outbox
from agent.runner import CheckRun
from remdiag.vocabulary import Category, CheckStatus


def run(n: int) -> CheckRun:
    return CheckRun(
        check_id=f"check.{n}",
        category=Category.HARDWARE,
        status=CheckStatus.OK,
        summary=str(n),
        values=(),
        thresholds={},
        remediation="",
        observed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_batches_take_sequences_in_order_and_leave_on_ack() -> None:
    outbox = Outbox(max_results=100)
    for n in range(5):
        outbox.add(run(n))
    first = outbox.next_batch(3)
    second = outbox.next_batch(3)
    assert first is not None and second is not None
    assert (first.sequence, second.sequence) == (1, 2)
    assert [r.summary for r in first.results + second.results] == ["0", "1", "2", "3", "4"]
    assert outbox.next_batch(3) is None
    assert len(outbox) == 5
    outbox.ack(1)
    assert len(outbox) == 2 and outbox.in_flight == 1
    outbox.ack(2)
    assert len(outbox) == 0


def test_resume_resends_only_what_the_collector_lacks() -> None:
    outbox = Outbox(max_results=100)
    for n in range(3):
        outbox.add(run(n))
        outbox.next_batch(10)
    resend = outbox.resume(acked_through=1)
    assert [b.sequence for b in resend] == [2, 3]


def test_resume_after_restart_continues_past_the_collectors_sequence() -> None:
    outbox = Outbox(max_results=100)
    assert outbox.resume(acked_through=41) == []
    outbox.add(run(0))
    batch = outbox.next_batch(10)
    assert batch is not None and batch.sequence == 42


def test_full_outbox_drops_oldest_pending_and_counts() -> None:
    outbox = Outbox(max_results=10)
    for n in range(15):
        outbox.add(run(n))
    assert len(outbox) == 10
    assert outbox.dropped == 5
    batch = outbox.next_batch(100)
    assert batch is not None
    assert batch.results[0].summary == "5"


def test_a_rejected_batch_leaves_and_is_counted() -> None:
    outbox = Outbox(max_results=100)
    for n in range(4):
        outbox.add(run(n))
    first = outbox.next_batch(2)
    second = outbox.next_batch(2)
    assert first is not None and second is not None
    assert outbox.reject(first.sequence) == 2
    assert outbox.reject(first.sequence) == 0
    assert outbox.rejected == 2
    assert [b.sequence for b in outbox.resume(acked_through=0)] == [second.sequence]
