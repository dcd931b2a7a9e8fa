"""memory.pressure: warns when RAM is nearly used up, which makes the PC crawl.

Swap is reported for context; memory.swap judges it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import MemoryFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

GIB = 1024**3


class MemoryPressureThresholds(Thresholds):
    max_used_percent_warning: float = Field(default=90, ge=0, le=100)
    max_used_percent_critical: float = Field(default=97, ge=0, le=100)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_used_percent_warning > self.max_used_percent_critical:
            raise ValueError("max_used_percent_warning must not exceed max_used_percent_critical")
        return self


class MemoryPressure(Check[MemoryFacts, MemoryPressureThresholds]):
    id = "memory.pressure"
    title = "Memory pressure"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=1)
    remediation = (
        "Close programs and browser tabs that are not needed, and restart the PC if it has been "
        "on for long. If memory stays full during normal work, the PC needs more RAM."
    )
    emits = (
        ValueSpec("used_percent", "%", "share of RAM in use"),
        ValueSpec("available_gib", "GiB", "RAM still available to programs"),
        ValueSpec("total_gib", "GiB", "installed RAM"),
        ValueSpec("swap_used_percent", "%", "share of swap in use (only when there is swap)"),
    )
    thresholds_type = MemoryPressureThresholds

    def gather(
        self, source: FactSource, thresholds: MemoryPressureThresholds
    ) -> MemoryFacts | Unavailable:
        return source.memory()

    def evaluate(self, facts: MemoryFacts, thresholds: MemoryPressureThresholds) -> Outcome:
        t = thresholds
        status = grade_max(
            facts.used_percent, t.max_used_percent_warning, t.max_used_percent_critical
        )
        summary = (
            f"memory {facts.used_percent:.1f}% used, {facts.available_bytes / GIB:.1f} GiB "
            f"of {facts.total_bytes / GIB:.1f} GiB available"
        )
        if status is not CheckStatus.OK:
            limit = (
                t.max_used_percent_critical
                if status is CheckStatus.CRITICAL
                else t.max_used_percent_warning
            )
            summary += f" ({status.label} above {limit:g}%)"
        values = [
            Measured("used_percent", facts.used_percent, "%"),
            Measured("available_gib", round(facts.available_bytes / GIB, 3), "GiB"),
            Measured("total_gib", round(facts.total_bytes / GIB, 3), "GiB"),
        ]
        if facts.swap_total_bytes > 0:
            values.append(Measured("swap_used_percent", facts.swap_used_percent, "%"))
            summary += f"; swap {facts.swap_used_percent:.0f}% used"
        return Outcome(status, summary, tuple(values))
