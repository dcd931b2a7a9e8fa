"""uptime.reboot_overdue: nudges a restart when the PC has run for weeks (updates, leaks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable, UptimeFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

DAY_SECONDS = 86400.0


class RebootOverdueThresholds(Thresholds):
    max_uptime_days_warning: float = Field(default=14, ge=0)
    max_uptime_days_critical: float = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_uptime_days_warning > self.max_uptime_days_critical:
            raise ValueError("max_uptime_days_warning must not exceed max_uptime_days_critical")
        return self


class RebootOverdue(Check[UptimeFacts, RebootOverdueThresholds]):
    id = "uptime.reboot_overdue"
    title = "Reboot overdue"
    category = Category.SOFTWARE
    default_interval = timedelta(hours=1)
    remediation = (
        "Save your work and restart the PC (a real restart, not sleep or shut-down with fast "
        "start-up). This finishes installing updates and frees memory that programs leaked."
    )
    emits = (ValueSpec("uptime_days", "days", "time since the last boot"),)
    thresholds_type = RebootOverdueThresholds

    def gather(
        self, source: FactSource, thresholds: RebootOverdueThresholds
    ) -> UptimeFacts | Unavailable:
        return source.uptime()

    def evaluate(self, facts: UptimeFacts, thresholds: RebootOverdueThresholds) -> Outcome:
        t = thresholds
        days = facts.uptime_seconds / DAY_SECONDS
        status = grade_max(days, t.max_uptime_days_warning, t.max_uptime_days_critical)
        summary = f"up {days:.1f} days since the last restart"
        if status is not CheckStatus.OK:
            limit = (
                t.max_uptime_days_critical
                if status is CheckStatus.CRITICAL
                else t.max_uptime_days_warning
            )
            summary += f" ({status.label} above {limit:g} days)"
        return Outcome(status, summary, (Measured("uptime_days", round(days, 3), "days"),))
