"""The collector's periodic jobs, run by APScheduler: today the SLA sweep.

Later jobs (offline detection, retention) join here. With several collectors on one database,
each runs the sweep; the sweep locks the rows it escalates (SKIP LOCKED on PostgreSQL) and marks
each missed deadline once, so a ticket is never escalated twice for one deadline.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collector import desk
from collector.store.runner import Store
from collector.triage import DeskSettings

log = logging.getLogger(__name__)


async def sla_sweep(store: Store) -> list[int]:
    """Escalate the open tickets that missed a deadline; the ids escalated."""
    now = datetime.now(UTC)
    escalated = await store.run(lambda s: desk.sweep(s, now))
    if escalated:
        log.info("escalated tickets %s: SLA deadline missed", ", ".join(map(str, escalated)))
    return escalated


async def run_jobs(store: Store, settings: DeskSettings) -> None:
    """Run the periodic jobs until cancelled."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        sla_sweep,
        IntervalTrigger(seconds=settings.sweep_seconds),
        args=[store],
        id="sla-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    try:
        await asyncio.Event().wait()  # until cancelled
    finally:
        scheduler.shutdown(wait=False)
