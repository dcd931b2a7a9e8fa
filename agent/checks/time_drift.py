"""time.drift: the clock is synchronised and close to the right time.

A clock that is off by minutes breaks sign-ins (Kerberos allows five), one-time codes and
certificate checks, long before anyone notices the wrong time on screen.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable
from agent.facts.software.models import TimeSyncFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class TimeDriftThresholds(Thresholds):
    max_offset_ms_warning: float = Field(default=1000, ge=0)
    max_offset_ms_critical: float = Field(default=30000, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_offset_ms_warning > self.max_offset_ms_critical:
            raise ValueError("max_offset_ms_warning must not exceed max_offset_ms_critical")
        return self


class TimeDrift(Check[TimeSyncFacts, TimeDriftThresholds]):
    id = "time.drift"
    title = "Clock synchronisation"
    category = Category.SOFTWARE
    default_interval = timedelta(minutes=10)
    remediation = (
        "Turn on 'Set time automatically' in the date and time settings and press 'Sync now' "
        "(Windows), or turn on network time (Mac, Linux). If it will not synchronise, check "
        "that the network allows time traffic (UDP port 123) or report the time server."
    )
    emits = (
        ValueSpec("offset_ms", "ms", "difference between this clock and the time source"),
        ValueSpec("synchronized", "", '"yes" or "no", as the OS reports it'),
        ValueSpec("source", "", "where the answer came from (chrony, kernel, w32tm, ...)"),
    )
    thresholds_type = TimeDriftThresholds

    def gather(
        self, source: FactSource, thresholds: TimeDriftThresholds
    ) -> TimeSyncFacts | Unavailable:
        return source.time_sync()

    def evaluate(self, facts: TimeSyncFacts, thresholds: TimeDriftThresholds) -> Outcome:
        t = thresholds
        values = [Measured("source", facts.source, "")]
        if facts.synchronized is not None:
            values.append(Measured("synchronized", "yes" if facts.synchronized else "no", ""))
        server = f" to {facts.server}" if facts.server else ""
        if facts.offset_ms is not None:
            offset = facts.offset_ms
            values.append(Measured("offset_ms", round(offset, 3), "ms"))
            status = grade_max(offset, t.max_offset_ms_warning, t.max_offset_ms_critical)
            summary = f"clock synchronised{server}, off by {_ms(offset)} ({facts.source})"
            if status is not CheckStatus.OK:
                limit = (
                    t.max_offset_ms_critical
                    if status is CheckStatus.CRITICAL
                    else t.max_offset_ms_warning
                )
                summary += f" ({status.label} above {_ms(limit)})"
            if facts.synchronized is False:
                status = max(status, CheckStatus.WARNING)
                summary = summary.replace("clock synchronised", "clock NOT synchronised", 1)
            return Outcome(status, summary, tuple(values))
        if facts.synchronized is True:
            summary = f"clock synchronised{server} ({facts.source}; the offset is not exposed)"
            return Outcome(CheckStatus.OK, summary, tuple(values))
        if facts.synchronized is False:
            summary = f"clock not synchronised ({facts.source})"
            if facts.ntp_enabled is False:
                summary += "; network time is switched off"
            return Outcome(CheckStatus.WARNING, summary, tuple(values))
        if facts.ntp_enabled is False:
            return Outcome(
                CheckStatus.WARNING, f"network time is switched off ({facts.source})", tuple(values)
            )
        return Outcome(
            CheckStatus.UNKNOWN,
            f"{facts.source} tells neither whether the clock is synchronised nor its offset",
            tuple(values),
        )


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.1f} ms"
