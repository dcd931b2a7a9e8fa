"""The running agent: plan, APScheduler jobs, outbox and transport wired together."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent import convert
from agent.checks.registry import CHECKS
from agent.config import AgentSettings
from agent.diagnostics.history import HISTORY_FILE, History
from agent.diagnostics.model import ActionContext, Outcome, ProgressSink, Request
from agent.diagnostics.runner import DiagnosticRunner
from agent.facts.live import LiveFacts
from agent.facts.machine import machine_facts
from agent.facts.source import FactSource
from agent.inventory import InventoryTracker
from agent.outbox import SPOOL_FILE, Outbox
from agent.plan import Plan, PlannedCheck, PolicyEntry, build_plan
from agent.runner import run_check
from agent.saved_policy import load_policy, save_policy
from agent.transport import Transport, TransportSettings
from remdiag.crontab import CronError
from remdiag.v1 import common_pb2

log = logging.getLogger(__name__)
CHECK_THREADS = 2
# A cron run the agent missed (asleep, busy) still happens if it is at most this late.
CRON_MISFIRE_GRACE_S = 300
M_ARENA_MAX = -8  # glibc's mallopt parameter number
# Start-up (imports, the first run of every check, enrollment, the first inventory) leaves freed
# memory inside the heap; it is handed back once it is over, then now and again.
RELEASE_MEMORY_JOB = "agent:release-memory"  # not a check id: those are "category.name"
RELEASE_MEMORY_FIRST = timedelta(seconds=30)
RELEASE_MEMORY_EVERY = timedelta(minutes=10)
# Every job run at INFO would drown the agent's own log.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own heap arena; a mostly idle agent then holds many
    half-empty arenas as resident memory. Two are enough for its few threads."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Collect cyclic garbage, then hand the heap's free pages back to the OS. glibc keeps
    freed memory for reuse; for an agent that mostly sleeps that is about 1 MB of RSS. About
    10 ms of CPU."""
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)


def implied_thresholds(settings: AgentSettings) -> dict[str, dict[str, Any]]:
    """What the agent can work out for itself: resolve the collector's own host name."""
    host = settings.collector.rpartition(":")[0].strip("[]")
    is_name = any(c.isalpha() for c in host) and ":" not in host
    return {"network.dns": {"names": [host]}} if is_name else {}


class Agent:
    def __init__(self, settings: AgentSettings, source: FactSource | None = None) -> None:
        self.settings = settings
        self.source: FactSource = source or LiveFacts(state_dir=settings.state_dir)
        self.outbox = Outbox(
            settings.state_dir / SPOOL_FILE, settings.outbox_max_results, settings.outbox_max_bytes
        )
        self.machine = machine_facts(settings.state_dir)
        self._implied = implied_thresholds(settings)
        self._policy: dict[str, PolicyEntry] = {}
        self.policy_version = 0
        """The version of the last policy applied; 0 before any."""
        self._saved_policy: common_pb2.Policy | None = None
        self.plan: Plan = build_plan(CHECKS, settings.checks, None, self._implied)
        self.transport = Transport(
            TransportSettings(
                collector=settings.collector,
                state_dir=settings.state_dir,
                enrollment_token=settings.enrollment_token,
                batch_max_results=settings.batch_max_results,
                batch_max_delay_seconds=settings.batch_max_delay_seconds,
                max_unacked_batches=settings.max_unacked_batches,
                reconnect_initial_seconds=settings.reconnect_initial_seconds,
                reconnect_max_seconds=settings.reconnect_max_seconds,
                inventory_interval_seconds=settings.inventory_interval_seconds,
                tls=settings.tls,
            ),
            self.machine,
            self.outbox,
            on_policy=self._on_policy_message,
            inventory=InventoryTracker(self.inventory_sections),
            on_diagnostic=self.run_diagnostic,
            policy_version=lambda: self.policy_version,
        )
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduled: dict[str, PlannedCheck] = {}
        self.diagnostics = DiagnosticRunner(
            settings.diagnostics,
            ActionContext(self.source, lambda: self.plan, self.inventory_sections),
            History(settings.state_dir / HISTORY_FILE, settings.diagnostics.history_max),
        )
        # The last policy received, followed from the start: the collector may be out of reach.
        self._saved_policy = load_policy(settings.state_dir)
        if self._saved_policy is not None:
            self.apply_policy(
                convert.policy_entries(self._saved_policy), self._saved_policy.version
            )

    async def run(self) -> None:
        """Run checks on schedule and keep the stream up until cancelled."""
        # Checks and fact gathering run here; two threads are plenty and keep the agent light.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="checks")
        )
        self._scheduler.start()
        self._schedule(self.plan)
        self._scheduler.add_job(
            release_free_memory,
            IntervalTrigger(seconds=RELEASE_MEMORY_EVERY.total_seconds()),
            id=RELEASE_MEMORY_JOB,
            next_run_time=datetime.now(UTC) + RELEASE_MEMORY_FIRST,
            coalesce=True,
        )
        try:
            await self.transport.run()
        finally:
            self._scheduler.shutdown(wait=False)

    def apply_policy(self, policy: dict[str, PolicyEntry], version: int = 0) -> Plan:
        """Rebuild the plan with the collector's policy and reschedule what changed."""
        self.plan = build_plan(CHECKS, self.settings.checks, policy, self._implied, self.plan)
        self._policy, self.policy_version = policy, version
        for problem in self.plan.problems:
            log.warning("%s", problem)
        if self._scheduler.running:
            self._schedule(self.plan)
        return self.plan

    def set_local_checks(self, checks: dict[str, Any]) -> Plan:
        """Replace the local check settings (a config reload) and reschedule.

        Raises pydantic.ValidationError, leaving everything as it was, if they are invalid.
        """
        self.settings = type(self.settings).model_validate(
            {**self.settings.model_dump(), "checks": checks}
        )
        return self.apply_policy(self._policy, self.policy_version)

    async def run_diagnostic(self, request: Request, progress: ProgressSink) -> Outcome:
        """Run a technician's diagnostic request (agent/diagnostics/runner.py); never raises
        for the action's own failures, which come back as a FAILED or REFUSED Outcome."""
        return await self.diagnostics.handle(request, progress)

    def inventory_sections(self) -> dict[str, Any]:
        """The inventory by section, as facts; agent/inventory.py turns it into JSON."""
        return {
            "machine": self.machine,
            "cpu": self.source.cpu(),
            "memory": self.source.memory(),
            "disks": self.source.disks(()),
            "interfaces": self.source.interfaces(),
            "uptime": self.source.uptime(),
            "hardware": self.source.hardware_inventory(),
            "software": self.source.software_inventory(),
            "network": self.source.network_inventory(),
            "security": self.source.security_inventory(),
        }

    def _on_policy_message(self, message: common_pb2.Policy) -> None:
        """Apply a policy from the stream and keep it on disk. Never raises: what cannot be
        applied is logged and the agent carries on with what it had."""
        try:
            self.apply_policy(convert.policy_entries(message), message.version)
        except Exception:
            log.exception("policy version %d could not be applied", message.version)
            return
        if message == self._saved_policy:
            return  # the same policy again (every reconnect): nothing to write
        try:
            save_policy(self.settings.state_dir, message)
        except OSError as exc:
            log.warning("cannot keep policy version %d on disk: %s", message.version, exc)
            return
        saved = common_pb2.Policy()
        saved.CopyFrom(message)
        self._saved_policy = saved
        log.info("policy version %d applied and saved", message.version)

    def _schedule(self, plan: Plan) -> None:
        """Make the jobs match the plan. An unchanged check keeps its job and next run. A check
        on an interval that is new or changed runs soon, then at its interval; one on cron
        waits for its next fire time, and a change of thresholds alone keeps that time."""
        wanted = {p.check.id: p for p in plan.checks}
        for check_id in list(self._scheduled):
            if check_id not in wanted:
                self._scheduler.remove_job(check_id)
                del self._scheduled[check_id]
        now = datetime.now(UTC)
        for index, (check_id, planned) in enumerate(sorted(wanted.items())):
            current = self._scheduled.get(check_id)
            if current == planned:
                continue
            if current is not None and planned.cron and current.schedule == planned.schedule:
                self._scheduler.modify_job(check_id, args=[planned])
                self._scheduled[check_id] = planned
                continue
            try:
                trigger = planned.trigger()
            except CronError as exc:  # build_plan validates cron: only a bug gets here
                log.error("%s: %s; its schedule stays as it was", check_id, exc)
                continue
            if current is not None:
                self._scheduler.remove_job(check_id)
            timing: dict[str, Any] = {"misfire_grace_time": CRON_MISFIRE_GRACE_S}
            if not planned.cron:
                timing = {
                    # First run now, spread a little so checks do not all gather at once.
                    "next_run_time": now + timedelta(milliseconds=200 * index),
                    "misfire_grace_time": max(1, int(planned.interval_seconds)),
                }
            self._scheduler.add_job(
                self._run_one,
                trigger,
                args=[planned],
                id=check_id,
                max_instances=1,
                coalesce=True,
                **timing,
            )
            self._scheduled[check_id] = planned
        log.info("scheduled %d checks", len(self._scheduled))

    async def _run_one(self, planned: PlannedCheck) -> None:
        # The spool's fsync stays off the event loop too.
        await asyncio.to_thread(lambda: self.outbox.add(run_check(planned, self.source)))
        self.transport.wake()
