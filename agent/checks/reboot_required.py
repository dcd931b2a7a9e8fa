"""os.reboot_required: the OS says a restart is needed to finish installing updates."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.software.models import RebootFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

DAY_SECONDS = 86400.0
NAMED_PACKAGES = 5


class RebootRequiredThresholds(Thresholds):
    max_pending_days_critical: float = Field(default=7, ge=0)
    """A restart pending longer than this is critical (judged where the OS says since when;
    otherwise a pending restart stays a warning)."""


class RebootRequired(Check[RebootFacts, RebootRequiredThresholds]):
    id = "os.reboot_required"
    title = "Restart required"
    category = Category.SOFTWARE
    default_interval = timedelta(hours=1)
    remediation = (
        "Save your work and restart the PC (Restart, not Shut down). Updates that were "
        "installed only take effect, and security fixes only protect the PC, after the restart."
    )
    emits = (
        ValueSpec("reboot_required", "", '"yes" when the OS says a restart is pending, else "no"'),
        ValueSpec("pending_days", "days", "how long the restart has been pending"),
        ValueSpec("packages", "count", "packages that asked for the restart"),
    )
    thresholds_type = RebootRequiredThresholds

    def gather(
        self, source: FactSource, thresholds: RebootRequiredThresholds
    ) -> RebootFacts | Unavailable:
        return source.reboot_required()

    def evaluate(self, facts: RebootFacts, thresholds: RebootRequiredThresholds) -> Outcome:
        if not facts.required:
            return Outcome(
                CheckStatus.OK, "no restart pending", (Measured("reboot_required", "no", ""),)
            )
        values = [
            Measured("reboot_required", "yes", ""),
            Measured("packages", len(facts.packages), "count"),
        ]
        summary = "restart pending"
        status = CheckStatus.WARNING
        if facts.pending_seconds is not None:
            days = facts.pending_seconds / DAY_SECONDS
            values.append(Measured("pending_days", round(days, 2), "days"))
            summary += f" for {days:.1f} days"
            if days > thresholds.max_pending_days_critical:
                status = CheckStatus.CRITICAL
                summary += f" (critical above {thresholds.max_pending_days_critical:g} days)"
        if facts.reasons:
            summary += f": {'; '.join(facts.reasons)}"
        if facts.packages:
            named = ", ".join(facts.packages[:NAMED_PACKAGES])
            more = len(facts.packages) - NAMED_PACKAGES
            summary += f"; asked for by {named}" + (f" and {more} more" if more > 0 else "")
        return Outcome(status, summary, tuple(values))
