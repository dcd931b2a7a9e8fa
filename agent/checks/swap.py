"""memory.swap: warns when swap fills up, the sign that RAM is too small for the day's work.

A machine without swap is OK with "no swap configured": there is nothing to fill up, and running
out of RAM there is what memory.pressure watches.
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


class MemorySwapThresholds(Thresholds):
    max_swap_used_percent_warning: float = Field(default=60, ge=0, le=100)
    max_swap_used_percent_critical: float = Field(default=85, ge=0, le=100)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_swap_used_percent_warning > self.max_swap_used_percent_critical:
            raise ValueError(
                "max_swap_used_percent_warning must not exceed max_swap_used_percent_critical"
            )
        return self


class MemorySwap(Check[MemoryFacts, MemorySwapThresholds]):
    id = "memory.swap"
    title = "Swap use"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=5)
    remediation = (
        "The PC is short of memory and is using the disk instead, which makes it slow. Close "
        "programs and browser tabs that are not needed and restart the PC; if it happens every "
        "day, the PC needs more RAM (hand over to L2)."
    )
    emits = (
        ValueSpec("swap_used_percent", "%", "share of swap in use"),
        ValueSpec("swap_used_gib", "GiB", "swap in use"),
        ValueSpec("swap_total_gib", "GiB", "swap configured (0 when there is none)"),
    )
    thresholds_type = MemorySwapThresholds

    def gather(
        self, source: FactSource, thresholds: MemorySwapThresholds
    ) -> MemoryFacts | Unavailable:
        return source.memory()

    def evaluate(self, facts: MemoryFacts, thresholds: MemorySwapThresholds) -> Outcome:
        t = thresholds
        total_gib = facts.swap_total_bytes / GIB
        if facts.swap_total_bytes <= 0:
            none = (Measured("swap_total_gib", 0.0, "GiB"),)
            return Outcome(CheckStatus.OK, "no swap configured: nothing to fill up", none)
        used = facts.swap_used_percent
        used_gib = total_gib * used / 100
        status = grade_max(used, t.max_swap_used_percent_warning, t.max_swap_used_percent_critical)
        summary = f"swap {used:.0f}% used ({used_gib:.1f} of {total_gib:.1f} GiB)"
        if status is not CheckStatus.OK:
            limit = (
                t.max_swap_used_percent_critical
                if status is CheckStatus.CRITICAL
                else t.max_swap_used_percent_warning
            )
            summary += f" ({status.label} above {limit:g}%)"
        values = (
            Measured("swap_used_percent", round(used, 1), "%"),
            Measured("swap_used_gib", round(used_gib, 3), "GiB"),
            Measured("swap_total_gib", round(total_gib, 3), "GiB"),
        )
        return Outcome(status, summary, values)
