"""Runs one planned check: gather, then judge; anything that goes wrong becomes UNKNOWN."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.checks.base import Measured, Outcome
from agent.facts.source import FactSource
from agent.plan import PlannedCheck
from remdiag.vocabulary import Category, CheckStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckRun:
    """A check's result as the agent keeps and sends it."""

    check_id: str
    category: Category
    status: CheckStatus
    summary: str
    values: tuple[Measured, ...]
    thresholds: dict[str, Any]
    remediation: str
    observed_at: datetime


def run_check(
    planned: PlannedCheck,
    source: FactSource,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckRun:
    check, thresholds = planned.check, planned.thresholds
    try:
        outcome = check.judge(check.gather(source, thresholds), thresholds)
    except Exception as exc:  # a check must never take the agent down
        log.exception("check %s failed", check.id)
        outcome = Outcome(CheckStatus.UNKNOWN, f"check failed: {type(exc).__name__}: {exc}")
    return CheckRun(
        check_id=check.id,
        category=check.category,
        status=outcome.status,
        summary=outcome.summary,
        values=outcome.values,
        thresholds=thresholds.model_dump(mode="json"),
        remediation=check.remediation if outcome.status.is_failure else "",
        observed_at=clock(),
    )
