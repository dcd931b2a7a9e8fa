"""Which checks run, how often, how strictly: defaults < local config < collector policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError

from agent.checks.base import Check, Thresholds
from agent.config import CheckSettings
from remdiag.crontab import CronError, cron_trigger


@dataclass(frozen=True)
class PolicyEntry:
    """The collector's word on one check (from the Policy message)."""

    disabled: bool = False
    interval_seconds: int = 0
    thresholds: Mapping[str, Any] | None = None
    cron: str = ""
    """A 5-field crontab schedule that replaces the interval, read in `timezone` ("" is UTC)."""
    timezone: str = ""


@dataclass(frozen=True)
class PlannedCheck:
    check: Check[Any, Any]
    thresholds: Thresholds
    interval_seconds: float
    """How often it runs, unless `cron` is set."""
    cron: str = ""
    """A crontab schedule (already validated) read in `timezone` ("" is UTC)."""
    timezone: str = ""

    @property
    def schedule(self) -> tuple[float, str, str]:
        """What decides when it runs: equal schedules fire at the same times."""
        if self.cron:
            return (0.0, self.cron, self.timezone)
        return (self.interval_seconds, "", "")

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger for this schedule. CronError only for a cron that
        build_plan did not validate."""
        if self.cron:
            return cron_trigger(self.cron, self.timezone)
        return IntervalTrigger(seconds=self.interval_seconds, jitter=None)


@dataclass(frozen=True)
class Plan:
    checks: tuple[PlannedCheck, ...]
    problems: tuple[str, ...] = ()
    """Policy entries that were refused, and why; the local settings (for a schedule, the
    previous one) stood instead."""


def build_plan(
    registry: Mapping[str, Check[Any, Any]],
    local: Mapping[str, CheckSettings],
    policy: Mapping[str, PolicyEntry] | None = None,
    implied: Mapping[str, Mapping[str, Any]] | None = None,
    previous: Plan | None = None,
) -> Plan:
    """The effective plan. `implied` fills thresholds the agent derives itself (e.g. DNS names
    from the collector's host) where neither config nor policy set them. A policy cron or
    timezone that is invalid is refused: the check keeps its schedule in `previous`, if it was
    planned there, else its local one."""
    policy = policy or {}
    before = {p.check.id: p for p in previous.checks} if previous is not None else {}
    planned: list[PlannedCheck] = []
    problems: list[str] = []
    for check_id, check in registry.items():
        settings = local.get(check_id, CheckSettings())
        entry = policy.get(check_id)
        if not settings.enabled or (entry is not None and entry.disabled):
            continue
        values = {**(implied or {}).get(check_id, {}), **settings.thresholds}
        thresholds = check.thresholds(values)
        if entry is not None and entry.thresholds:
            try:
                thresholds = check.thresholds({**values, **entry.thresholds})
            except ValidationError as exc:
                problems.append(f"policy for {check_id} refused: {_first_error(exc)}")
        interval = _local_interval(check, settings)
        if entry is not None and entry.interval_seconds:
            interval = entry.interval_seconds
        cron, timezone = "", ""
        if entry is not None and entry.cron:
            try:
                cron_trigger(entry.cron, entry.timezone)
                cron, timezone = entry.cron, entry.timezone
            except CronError as exc:
                problems.append(f"policy for {check_id} refused: {exc}")
                old = before.get(check_id)
                if old is not None:
                    interval, cron, timezone = old.interval_seconds, old.cron, old.timezone
                else:
                    interval = _local_interval(check, settings)
        planned.append(PlannedCheck(check, thresholds, float(interval), cron, timezone))
    unknown = sorted(set(policy) - set(registry))
    problems.extend(f"policy names unknown check {check_id}" for check_id in unknown)
    return Plan(tuple(planned), tuple(problems))


def _local_interval(check: Check[Any, Any], settings: CheckSettings) -> float:
    return float(settings.interval_seconds or check.default_interval.total_seconds())


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
