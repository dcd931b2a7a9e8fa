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
import heapq
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

REPORT_EVERY_S = 10.0
TURNS_KEPT = 64
"""The latest turns whose durations set the pace."""
MAX_PAUSE_S = 30.0
"""The longest pause a refused agent is told. In a cold start's first seconds the pace can be
measured at a tenth of what it soon is, and the line ahead then looked minutes long: an agent
told too long a pause leaves the collector idle later, one told too short is refused once more."""
UNKNOWN_PACE_PAUSE_S = 10.0
"""The pause a refused agent is told before a first round of turns has ended."""
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
    def __init__(
        self, concurrent: int, waiting: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._concurrent = concurrent
        self._clock = clock
        self._max_waiting = waiting
        self._waiting = 0
        self.refused = 0
        """Connects refused because the waiting line was full, since start."""
        self._reported = 0
        self._reported_at = -REPORT_EVERY_S
        self._turns: deque[float] = deque(maxlen=TURNS_KEPT)
        """How long the latest turns lasted, from their start to `done()`."""
        self._told: list[float] = []
        """When refused agents were told to come back, those not yet due (a heap)."""

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

    def pace(self) -> float | None:
        """Handshakes a second while every turn is taken: the turns over the median duration
        of the latest ones; None until a first round of turns has ended (a cold start's first
        round takes seconds). Not how many ended lately: a slow start or a quiet spell lowers
        that count. Not the mean: one agent slow to say hello holds a turn for seconds. A pace
        too low has refused agents told to come back long after the collector is free again
        (after a restart it idled half a minute with half the fleet away); one too high only
        has an agent refused once more."""
        if len(self._turns) < min(self._concurrent, TURNS_KEPT):
            return None
        return self._concurrent / max(statistics.median(self._turns), 1e-6)

    def retry_after_s(self, now: float) -> float:
        """When a refused agent should come back: after the line ahead of it and every agent
        refused before it and not yet due, at the pace (at least 1 s, at most MAX_PAUSE_S).
        Before the pace is known, UNKNOWN_PACE_PAUSE_S: after a restart a pace taken from the
        first slow turns told 3,400 agents refused in the first two seconds to stay away 30 s,
        and the collector had nothing to do for 10 s before they came. Told the same time, the
        refused would all come back together, be refused together again, and each refusal
        costs the collector a call."""
        while self._told and self._told[0] <= now:
            heapq.heappop(self._told)
        pace = self.pace()
        if pace is None:
            pause = UNKNOWN_PACE_PAUSE_S
        else:
            pause = min(MAX_PAUSE_S, max(1.0, (self._waiting + len(self._told)) / pace))
        heapq.heappush(self._told, now + pause)
        return pause

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Wait for a slot (cancelled with the call when the agent gives up)."""
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        turn = Turn(partial(self._finish, self._clock()))
        try:
            yield turn
        finally:
            turn.done()

    def _finish(self, started: float) -> None:
        self._turns.append(self._clock() - started)
        self._slots.release()
