"""updates.security_pending: security fixes (and updates in general) waiting to be installed."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable
from agent.facts.software.models import UpdatesFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

DAY_SECONDS = 86400.0
NAMED_UPDATES = 5


class SecurityUpdatesThresholds(Thresholds):
    max_security_updates_warning: int = Field(default=0, ge=0)
    max_security_updates_critical: int = Field(default=10, ge=0)
    max_pending_updates_warning: int = Field(default=50, ge=0)
    """All pending updates, security or not."""
    max_lists_age_days_warning: float = Field(default=30, ge=0)
    """The agent never refreshes the package lists; lists older than this mean updates are
    probably not being checked for at all, so the count understates what is missing."""

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_security_updates_warning > self.max_security_updates_critical:
            raise ValueError(
                "max_security_updates_warning must not exceed max_security_updates_critical"
            )
        return self


class SecurityUpdatesPending(Check[UpdatesFacts, SecurityUpdatesThresholds]):
    id = "updates.security_pending"
    title = "Pending security updates"
    category = Category.SECURITY
    default_interval = timedelta(hours=6)
    remediation = (
        "Install the pending updates: Windows Update in Settings, Software Update on a Mac, "
        "the Software Updater (or `sudo apt upgrade` / `sudo dnf upgrade`) on Linux, then "
        "restart if asked. If updates never install by themselves, check that automatic "
        "updates are switched on."
    )
    emits = (
        ValueSpec("security_updates", "count", "pending updates that fix security problems"),
        ValueSpec("pending_updates", "count", "all pending updates"),
        ValueSpec("lists_age_days", "days", "age of the local package lists judged"),
        ValueSpec("manager", "", "where the answer comes from (apt, dnf, windows-update, ...)"),
    )
    thresholds_type = SecurityUpdatesThresholds

    def gather(
        self, source: FactSource, thresholds: SecurityUpdatesThresholds
    ) -> UpdatesFacts | Unavailable:
        return source.pending_updates()

    def evaluate(self, facts: UpdatesFacts, thresholds: SecurityUpdatesThresholds) -> Outcome:
        t = thresholds
        values = [
            Measured("pending_updates", facts.pending, "count"),
            Measured("manager", facts.manager, ""),
        ]
        findings: list[tuple[CheckStatus, str]] = []
        security = facts.security
        if security is None:
            summary = f"{facts.pending} updates pending ({facts.manager}; it does not say which "
            summary += "fix security problems)"
        else:
            values.append(Measured("security_updates", security, "count"))
            summary = f"{facts.pending} updates pending, {security} of them security"
            summary += f" ({facts.manager})"
            status = grade_max(
                security, t.max_security_updates_warning, t.max_security_updates_critical
            )
            if status is not CheckStatus.OK:
                limit = (
                    t.max_security_updates_critical
                    if status is CheckStatus.CRITICAL
                    else t.max_security_updates_warning
                )
                names = [u.name for u in facts.updates if u.security]
                findings.append((status, f"more than {limit} security updates: {_named(names)}"))
        if facts.pending > t.max_pending_updates_warning:
            findings.append(
                (CheckStatus.WARNING, f"more than {t.max_pending_updates_warning} updates")
            )
        if facts.lists_age_seconds is not None:
            age_days = facts.lists_age_seconds / DAY_SECONDS
            values.append(Measured("lists_age_days", round(age_days, 2), "days"))
            if age_days > t.max_lists_age_days_warning:
                findings.append(
                    (
                        CheckStatus.WARNING,
                        f"package lists not refreshed for {age_days:.0f} days "
                        f"(above {t.max_lists_age_days_warning:g}), so more may be missing",
                    )
                )
        worst = max((status for status, _ in findings), default=CheckStatus.OK)
        if worst is not CheckStatus.OK:
            summary += f" ({worst.label}: {'; '.join(text for _, text in findings)})"
        return Outcome(worst, summary, tuple(values))


def _named(names: list[str]) -> str:
    shown = ", ".join(names[:NAMED_UPDATES])
    more = len(names) - NAMED_UPDATES
    return shown + (f" and {more} more" if more > 0 else "")
