"""The collector's periodic jobs, run by APScheduler: the desk sweep, diagnostics' expiry,
maintenance tasks (collector/tasks.py) and recurring preventive tickets (collector/recurring.py).

Each sweep pauses or resumes SLA clocks for maintenance windows, escalates tickets past a
deadline, and opens or resolves offline tickets. With several collectors on one PostgreSQL, each
schedules the jobs but one does a given job's round: the others find its advisory lock taken and
skip (collector/bus.py run_once). The sweep still locks the rows it changes (SKIP LOCKED) and
marks each missed deadline once, so a ticket is never escalated twice for one deadline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session

from collector import bus, desk, recurring, tasks
from collector.dispatch import Dispatcher
from collector.offline import OfflineOutcome, sweep_offline
from collector.retention import RetentionSettings, retention_sweep
from collector.store.runner import Store
from collector.triage import DeskSettings

log = logging.getLogger(__name__)
DIAGNOSTIC_EXPIRY_S = 2.0
"""Queued diagnostics are marked expired within this of their expiry."""


@dataclass(frozen=True)
class SweepOutcome:
    paused: list[int]
    resumed: list[int]
    escalated: list[int]
    offline: OfflineOutcome


async def desk_sweep(
    store: Store, settings: DeskSettings, reopen_window: timedelta, now: datetime | None = None
) -> SweepOutcome:
    """One sweep at `now` (the clock by default); what it changed, by ticket id."""
    at = now or datetime.now(UTC)

    def work(session: Session) -> SweepOutcome:
        if not bus.run_once(session, "desk-sweep"):  # another collector sweeps right now
            return SweepOutcome([], [], [], OfflineOutcome())
        paused, resumed = desk.pause_clocks(session, at)
        escalated = desk.sweep(session, at)
        offline = sweep_offline(session, at, settings, reopen_window)
        return SweepOutcome(paused, resumed, escalated, offline)

    outcome = await store.run(work)
    for what, ids in (
        ("SLA clocks paused (maintenance)", outcome.paused),
        ("SLA clocks resumed", outcome.resumed),
        ("escalated: SLA deadline missed", outcome.escalated),
        ("offline tickets opened", outcome.offline.opened),
        ("offline tickets resolved: back online", outcome.offline.resolved),
    ):
        if ids:
            log.info("%s: tickets %s", what, ", ".join(map(str, ids)))
    return outcome


async def expire_diagnostics(dispatcher: Dispatcher) -> None:
    expired = await dispatcher.expire()
    if expired:
        log.info("diagnostics expired before their machine came online: %s", ", ".join(expired))


async def run_jobs(
    store: Store,
    settings: DeskSettings,
    reopen_window: timedelta,
    dispatcher: Dispatcher,
    retention: RetentionSettings | None = None,
) -> None:
    """Run the periodic jobs until cancelled."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    if retention is not None and retention.enabled:
        scheduler.add_job(
            retention_sweep,
            IntervalTrigger(minutes=retention.sweep_minutes),
            args=[store, retention],
            id="retention",
            max_instances=1,
            coalesce=True,
        )
    scheduler.add_job(
        expire_diagnostics,
        IntervalTrigger(seconds=DIAGNOSTIC_EXPIRY_S),
        args=[dispatcher],
        id="diagnostics-expiry",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        desk_sweep,
        IntervalTrigger(seconds=settings.sweep_seconds),
        args=[store, settings, reopen_window],
        id="desk-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        tasks.tick,
        IntervalTrigger(seconds=tasks.TICK_SECONDS),
        args=[store, dispatcher, settings],
        id="maintenance-tasks",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        recurring.tick,
        IntervalTrigger(seconds=recurring.TICK_SECONDS),
        args=[store, settings],
        id="recurring-tickets",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    try:
        await asyncio.Event().wait()  # until cancelled
    finally:
        scheduler.shutdown(wait=False)
