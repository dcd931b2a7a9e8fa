"""Which checks run, how often, how strictly: defaults < local config < collector policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.checks.base import Check, Thresholds
from agent.config import CheckSettings


@dataclass(frozen=True)
class PolicyEntry:
    """The collector's word on one check (from the Policy message)."""

    disabled: bool = False
    interval_seconds: int = 0
    thresholds: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PlannedCheck:
    check: Check[Any, Any]
    thresholds: Thresholds
    interval_seconds: float


@dataclass(frozen=True)
class Plan:
    checks: tuple[PlannedCheck, ...]
    problems: tuple[str, ...] = ()
    """Policy entries that were refused, and why; the local settings stood instead."""


def build_plan(
    registry: Mapping[str, Check[Any, Any]],
    local: Mapping[str, CheckSettings],
    policy: Mapping[str, PolicyEntry] | None = None,
    implied: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """The effective plan. `implied` fills thresholds the agent derives itself (e.g. DNS names
    from the collector's host) where neither config nor policy set them."""
    policy = policy or {}
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
        interval = check.default_interval.total_seconds()
        if settings.interval_seconds:
            interval = settings.interval_seconds
        if entry is not None and entry.interval_seconds:
            interval = entry.interval_seconds
        planned.append(PlannedCheck(check, thresholds, float(interval)))
    unknown = sorted(set(policy) - set(registry))
    problems.extend(f"policy names unknown check {check_id}" for check_id in unknown)
    return Plan(tuple(planned), tuple(problems))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
