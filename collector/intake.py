"""Group commit for the agents' streams: many agents' result batches and heartbeats are written
in one transaction, so each pays a share of one commit instead of a commit of its own.

A stream awaits its batch's outcome before it acks, so an ack still means "committed". While a
group is being written the next one gathers: at low load a group is one batch (no added wait),
under load groups grow up to `max_results` and the store's fixed costs per transaction (begin,
commit, the agents' and states' statements) are shared by all of them.

A small group waits a little for company too (`batch_linger_s`) when many machines are sending
(`linger_min_senders` a second) and the last group was small (under a tenth of `max_results`):
a large quiet fleet's batches come dozens a second, and written one by one each paid the whole
transaction (the statements' fixed costs and the commit were most of the store thread's time at
10,000 agents). A few machines' batches are not worth waiting for: company would rarely come,
and the wait would only delay their acks. A loaded collector writes large groups, so it never
waits.

Heartbeats are different: nobody waits on them (the stream reads on; only a lagging agent's
policy comes back), and a large quiet fleet sends hundreds a second. Alone they wait up to
`beat_linger_s` for company, and go with the next batches' group or as one group of their own:
a transaction per heartbeat was most of what a quiet fleet cost the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from collector import fleet, policies
from collector.config import CheckPolicySettings
from collector.engine import TicketRules
from collector.ingest import Batch, IngestOutcome, ingest_batches
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.v1 import common_pb2

log = logging.getLogger(__name__)

DEFAULT_MAX_RESULTS = 5000
"""Results per group: enough to share the transaction's costs, small enough that the first
batch of a group does not wait long for its commit."""
DEFAULT_BATCH_LINGER_S = 0.1
"""How long a group smaller than `max_results` waits for more batches: added to an ack's latency
only when the writer is idle, next to an agent's batch every few minutes."""
DEFAULT_LINGER_MIN_SENDERS = 16
"""Machines that sent batches within the last second for a small group to linger: at 16 a
second, 0.1 s of lingering gathers one or two more batches."""
DEFAULT_BEAT_LINGER_S = 2.0
"""How long heartbeats alone wait for a group: `last_seen_at` is that much late at most, next to
a heartbeat interval of 30 s and an offline threshold of minutes."""


@dataclass(frozen=True)
class Beat:
    """A heartbeat: the agent is alive, its spool dropped `dropped` results so far and it
    runs policy version `running` (0: it does not say)."""

    agent_id: str
    at: datetime
    dropped: int = 0
    running: int = 0


class IntakeClosedError(RuntimeError):
    """The collector is stopping: the batch was not stored (nor acked); the agent resends it."""


class Intake:
    """Queues the streams' writes and commits them in groups (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        rules: TicketRules,
        desk: DeskSettings,
        config_checks: Mapping[str, CheckPolicySettings],
        max_results: int = DEFAULT_MAX_RESULTS,
        beat_linger_s: float = DEFAULT_BEAT_LINGER_S,
        batch_linger_s: float = DEFAULT_BATCH_LINGER_S,
        linger_min_senders: int = DEFAULT_LINGER_MIN_SENDERS,
    ) -> None:
        self._store = store
        self._rules = rules
        self._desk = desk
        self._config_checks = config_checks
        self._max_results = max_results
        self._beat_linger_s = beat_linger_s
        self._batch_linger_s = batch_linger_s
        self._linger_min_senders = linger_min_senders
        self._senders = SendersPerSecond()
        self._batches: list[tuple[Batch, asyncio.Future[IngestOutcome]]] = []
        self._batches_since = 0.0
        """When the oldest batch waiting was queued (the loop's clock)."""
        self._queued_results = 0
        self._last_group_results = 0
        """Results in the group written last: lingering is for a collector whose groups are
        small; a loaded one writes large groups anyway and would only lose time."""
        self._beats: list[tuple[Beat, asyncio.Future[common_pb2.Policy | None]]] = []
        self._beats_since = 0.0
        """When the oldest heartbeat waiting was queued (the loop's clock)."""
        self._ready = asyncio.Event()
        """Something is queued."""
        self._batch_ready = asyncio.Event()
        """A batch is queued: heartbeats waiting for company go with it."""
        self._group_full = asyncio.Event()
        """The batches queued fill a group: it goes without lingering."""
        self._closed = False

    async def ingest(self, batch: Batch) -> IngestOutcome:
        """Store the batch and run the rules over it; returns once the group has committed."""
        now = asyncio.get_running_loop().time()
        if not self._batches:
            self._batches_since = now
        self._senders.saw(batch.agent_id, now)
        future: asyncio.Future[IngestOutcome] = self._queue(self._batches, batch)
        self._queued_results += len(batch.results)
        if self._queued_results >= self._max_results:
            self._group_full.set()
        self._batch_ready.set()
        return await future

    def heartbeat(self, beat: Beat) -> asyncio.Future[common_pb2.Policy | None]:
        """Queue the heartbeat; the future gives the agent's Policy when it runs another
        version, once written (up to `beat_linger_s` later, see the module docstring)."""
        if not self._beats:
            self._beats_since = asyncio.get_running_loop().time()
        future: asyncio.Future[common_pb2.Policy | None] = self._queue(self._beats, beat)
        return future

    def _queue(self, queue: list[tuple[Any, asyncio.Future[Any]]], item: Any) -> Any:
        if self._closed:
            raise IntakeClosedError("the collector is stopping")
        future = asyncio.get_running_loop().create_future()
        queue.append((item, future))
        self._ready.set()
        return future

    async def run(self) -> None:
        """Write groups until cancelled: one writer on SQLite (one writer is all it has),
        as many as the store has threads on PostgreSQL."""
        try:
            await asyncio.gather(*(self._writer() for _ in range(self._store.writers)))
        finally:
            self._closed = True
            futures: list[asyncio.Future[Any]] = [f for _, f in self._batches]
            futures.extend(f for _, f in self._beats)
            for future in futures:
                if not future.done():
                    future.set_exception(IntakeClosedError("the collector is stopping"))
            self._batches.clear()
            self._queued_results = 0
            self._beats.clear()

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._batches and not self._beats:
                self._ready.clear()
                await self._ready.wait()
                continue
            if not self._batches:
                lingered = loop.time() - self._beats_since
                if lingered < self._beat_linger_s:
                    self._batch_ready.clear()
                    await _wait(self._batch_ready, self._beat_linger_s - lingered)
                    continue
            elif (
                self._queued_results < self._max_results
                and self._last_group_results < self._max_results // 10
                and self._senders.count(loop.time()) >= self._linger_min_senders
            ):
                lingered = loop.time() - self._batches_since
                if lingered < self._batch_linger_s:
                    self._group_full.clear()
                    await _wait(self._group_full, self._batch_linger_s - lingered)
                    continue
            batches, beats = self._take()
            try:
                outcomes, replies = await self._store.run(
                    partial(
                        self._write, batches=[b for b, _ in batches], beats=[b for b, _ in beats]
                    )
                )
            except Exception:
                # One bad item must not fail its neighbours: each alone, in its own transaction.
                log.warning(
                    "a group of %d batches and %d heartbeats failed; writing each alone",
                    len(batches),
                    len(beats),
                    exc_info=True,
                )
                await self._one_by_one(batches, beats)
                continue
            for (_, future), outcome in zip(batches, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
            for (_, beat_future), reply in zip(beats, replies, strict=True):
                if not beat_future.done():
                    beat_future.set_result(reply)

    def _take(
        self,
    ) -> tuple[
        list[tuple[Batch, asyncio.Future[IngestOutcome]]],
        list[tuple[Beat, asyncio.Future[common_pb2.Policy | None]]],
    ]:
        """The oldest batches up to `max_results` results (at least one), and every heartbeat."""
        count, size = 0, 0
        for batch, _ in self._batches:
            if count and size + len(batch.results) > self._max_results:
                break
            count += 1
            size += len(batch.results)
        batches, self._batches = self._batches[:count], self._batches[count:]
        self._queued_results -= size
        self._last_group_results = size
        # The batches left behind were queued while the group gathered: their wait starts now.
        self._batches_since = asyncio.get_running_loop().time()
        beats, self._beats = self._beats, []
        return batches, beats

    def _write(
        self, session: Session, batches: list[Batch], beats: list[Beat]
    ) -> tuple[list[IngestOutcome], list[common_pb2.Policy | None]]:
        outcomes = ingest_batches(session, batches, self._rules, self._desk) if batches else []
        replies: list[common_pb2.Policy | None] = []
        if beats:
            should_run = fleet.heartbeats(
                session, [(b.agent_id, b.at, b.dropped, b.running) for b in beats]
            )
            replies = [
                None
                if not beat.running or should_run.get(beat.agent_id, beat.running) == beat.running
                else policies.policy_if_behind(
                    session, beat.agent_id, beat.running, self._config_checks
                )
                for beat in beats
            ]
        return outcomes, replies

    async def _one_by_one(
        self,
        batches: list[tuple[Batch, asyncio.Future[IngestOutcome]]],
        beats: list[tuple[Beat, asyncio.Future[common_pb2.Policy | None]]],
    ) -> None:
        for batch, future in batches:
            await self._alone(future, partial(self._write, batches=[batch], beats=[]), 0)
        for beat, beat_future in beats:
            await self._alone(beat_future, partial(self._write, batches=[], beats=[beat]), 1)

    async def _alone(
        self,
        future: asyncio.Future[Any],
        write: Callable[[Session], tuple[list[Any], list[Any]]],
        part: int,
    ) -> None:
        try:
            written = await self._store.run(write)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(written[part][0])


class SendersPerSecond:
    """How many distinct machines sent batches within the last whole second (or this one)."""

    def __init__(self) -> None:
        self._second = 0
        self._now: set[str] = set()
        self._last = 0

    def saw(self, agent_id: str, now: float) -> None:
        self._roll(now)
        self._now.add(agent_id)

    def count(self, now: float) -> int:
        self._roll(now)
        return max(self._last, len(self._now))

    def _roll(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            self._last = len(self._now) if second == self._second + 1 else 0
            self._now = set()
            self._second = second


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
