"""Holds results until the collector acks them: batching, sequence numbers, resend, a bound.

In memory for now; results survive collector outages and reconnects, not an agent restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from agent.runner import CheckRun


@dataclass(frozen=True)
class Batch:
    sequence: int
    results: tuple[CheckRun, ...]


class Outbox:
    def __init__(self, max_results: int) -> None:
        self._max_results = max_results
        self._pending: deque[CheckRun] = deque()
        self._in_flight: dict[int, Batch] = {}
        self._last_sequence = 0
        self.dropped = 0
        """Results dropped, oldest first, because the outbox was full."""
        self.rejected = 0
        """Results the collector refused as invalid."""

    @property
    def last_sequence(self) -> int:
        return self._last_sequence

    def __len__(self) -> int:
        return len(self._pending) + sum(len(b.results) for b in self._in_flight.values())

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def add(self, run: CheckRun) -> None:
        self._pending.append(run)
        while len(self) > self._max_results and self._pending:
            self._pending.popleft()
            self.dropped += 1

    def next_batch(self, max_results: int) -> Batch | None:
        """Take up to `max_results` pending results as the next sequence, kept until acked."""
        if not self._pending:
            return None
        count = min(max_results, len(self._pending))
        results = tuple(self._pending.popleft() for _ in range(count))
        self._last_sequence += 1
        batch = Batch(self._last_sequence, results)
        self._in_flight[batch.sequence] = batch
        return batch

    def ack(self, through: int) -> None:
        for sequence in [s for s in self._in_flight if s <= through]:
            del self._in_flight[sequence]

    def reject(self, sequence: int) -> int:
        """Drop an in-flight batch the collector refused; return how many results it held."""
        batch = self._in_flight.pop(sequence, None)
        if batch is None:
            return 0
        self.rejected += len(batch.results)
        return len(batch.results)

    def resume(self, acked_through: int) -> list[Batch]:
        """After (re)connecting: forget what the collector has, return what to send again.

        A collector that has seen higher sequences than this agent (the agent restarted)
        moves the counter past them, so new results are never mistaken for resends.
        """
        self.ack(acked_through)
        self._last_sequence = max(self._last_sequence, acked_through)
        return [self._in_flight[s] for s in sorted(self._in_flight)]

    def reserve_sequence(self) -> int:
        """A sequence for a data message that is not a result batch (the inventory)."""
        self._last_sequence += 1
        return self._last_sequence
