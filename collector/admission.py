"""How many agents may be between "Connect opened" and "Welcome sent" (or in an Enroll) at once.

After a collector restart the whole fleet reconnects within seconds. Served all at once, every
handshake waits behind every other one at the store, the first Welcome comes only when nearly
all are done, and agents that give up waiting (30 s) retry and add to the pile: the work is
wasted and the fleet never gets back. So a few handshakes run at a time, in arrival order, and
the rest wait their turn at no cost; when even the waiting line is full, a Connect is refused
at once (UNAVAILABLE, before any database work) and the agent backs off and comes back later.
Enrollments take turns the same way: a fleet enrolling at once (a rollout, a database restored
from an older backup) would pile up at the store just as a restart does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

REPORT_EVERY_S = 10.0
PACE_WINDOW_S = 5.0
"""Handshakes finished in the last this many seconds set the pace a refused agent is told."""
RETRY_AFTER_HEADER = "x-remdiag-retry-after-ms"
"""Trailing metadata of a refusal: when to come back, so the agent need not guess by backing
off (agent/transport.py honours it, within its own bounds)."""


@dataclass
class Turn:
    """One admitted handshake; `done()` lets the next one in (it is also let in at exit)."""

    _release: Callable[[], None]
    _released: bool = False

    def done(self) -> None:
        if not self._released:
            self._released = True
            self._release()


class HandshakeGate:
    def __init__(self, concurrent: int, waiting: int) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._max_waiting = waiting
        self._waiting = 0
        self.refused = 0
        """Connects refused because the waiting line was full, since start."""
        self._reported = 0
        self._reported_at = -REPORT_EVERY_S
        self._finished: deque[float] = deque()
        """When recent turns ended (monotonic), for the pace."""
        self._booked_until = 0.0
        """The time (monotonic) up to which refused agents have been told to come back."""

    @property
    def waiting(self) -> int:
        return self._waiting

    def saturated(self) -> bool:
        """Every turn is taken: the next Connect waits."""
        return self._slots.locked()

    def full(self) -> bool:
        """Every turn taken and no room in the waiting line: refuse the next Connect."""
        return self.saturated() and self._waiting >= self._max_waiting

    def refuse(self, now: float) -> int:
        """Count a refusal; the refusals not yet reported, once every REPORT_EVERY_S seconds
        (else 0), so a storm is one log line every few seconds, not one per agent."""
        self.refused += 1
        if now - self._reported_at < REPORT_EVERY_S:
            return 0
        unreported, self._reported_at = self.refused - self._reported, now
        self._reported = self.refused
        return unreported

    def retry_after_s(self, now: float) -> float:
        """When a refused agent should come back: a time of its own, after the line ahead of it
        at the recent pace and after every agent refused before it (at least 1 s; 10 s before
        any pace is known). Told the same time, the refused would all come back together, be
        refused together again, and each refusal costs the collector a call."""
        while self._finished and self._finished[0] < now - PACE_WINDOW_S:
            self._finished.popleft()
        if not self._finished:
            return 10.0
        pace = len(self._finished) / PACE_WINDOW_S
        come_back = max(now + max(1.0, self._waiting / pace), self._booked_until)
        # The next refused agent comes back one turn later; nothing is kept per agent.
        self._booked_until = come_back + 1 / pace
        return come_back - now

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Wait for a slot (cancelled with the call when the agent gives up)."""
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        turn = Turn(self._finish)
        try:
            yield turn
        finally:
            turn.done()

    def _finish(self) -> None:
        self._finished.append(time.monotonic())
        self._slots.release()
