"""log.error_burst: a sudden flood of errors in the system log, a sign something is failing."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable
from agent.facts.software.models import MAX_LOG_ERRORS, LogErrorsFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

HOUR_SECONDS = 3600.0


class LogErrorBurstThresholds(Thresholds):
    max_errors_per_hour_warning: int = Field(default=50, ge=0, le=MAX_LOG_ERRORS)
    max_errors_per_hour_critical: int = Field(default=500, ge=0, le=MAX_LOG_ERRORS)
    """At most the number of entries the agent counts in a window."""

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_errors_per_hour_warning > self.max_errors_per_hour_critical:
            raise ValueError(
                "max_errors_per_hour_warning must not exceed max_errors_per_hour_critical"
            )
        return self


class LogErrorBurst(Check[LogErrorsFacts, LogErrorBurstThresholds]):
    id = "log.error_burst"
    title = "Errors in the system log"
    category = Category.SOFTWARE
    default_interval = timedelta(minutes=15)
    remediation = (
        "Restart the PC. If errors keep pouring in, a technician should open the system log "
        "(Event Viewer > Windows Logs > System, or `journalctl -p err -b`) and look at which "
        "program or device repeats the same error."
    )
    emits = (
        ValueSpec("errors_last_hour", "count", "error-level entries in the system log, last hour"),
        ValueSpec("source", "", "which log was read"),
    )
    thresholds_type = LogErrorBurstThresholds

    def gather(
        self, source: FactSource, thresholds: LogErrorBurstThresholds
    ) -> LogErrorsFacts | Unavailable:
        return source.log_errors()

    def evaluate(self, facts: LogErrorsFacts, thresholds: LogErrorBurstThresholds) -> Outcome:
        t = thresholds
        if facts.window_seconds <= 0:
            return Outcome(CheckStatus.UNKNOWN, "the log was read over an empty window")
        per_hour = facts.errors_last_hour * HOUR_SECONDS / facts.window_seconds
        status = grade_max(per_hour, t.max_errors_per_hour_warning, t.max_errors_per_hour_critical)
        count = f"at least {facts.errors_last_hour}" if facts.truncated else facts.errors_last_hour
        summary = f"{count} errors in the system log in the last hour ({facts.source})"
        if status is not CheckStatus.OK:
            limit = (
                t.max_errors_per_hour_critical
                if status is CheckStatus.CRITICAL
                else t.max_errors_per_hour_warning
            )
            summary += f" ({status.label} above {limit} per hour)"
        values = (
            Measured("errors_last_hour", facts.errors_last_hour, "count"),
            Measured("source", facts.source, ""),
        )
        return Outcome(status, summary, values)
