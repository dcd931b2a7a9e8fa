"""security.antivirus: an antivirus is on and its definitions are recent.

On Windows, Security Center lists every registered product, so "none enabled" is a fact. Elsewhere
only known scanners (ClamAV, XProtect, common endpoint agents) can be looked for: finding none is
reported as UNKNOWN (we cannot prove there is none), or as WARNING when the policy sets
`require_antivirus`, never as a silent OK.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.security.models import AntivirusFacts, AntivirusProduct
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class AntivirusThresholds(Thresholds):
    max_definitions_age_days_warning: float = Field(default=7, gt=0, le=365)
    max_xprotect_age_days_warning: float = Field(default=60, gt=0, le=365)
    """Apple ships XProtect data every few weeks, not daily: judged by its own limit."""
    require_antivirus: bool = False
    """Where products cannot be listed (Linux, macOS), warn when no known scanner is found."""


class AntivirusActive(Check[AntivirusFacts, AntivirusThresholds]):
    id = "security.antivirus"
    title = "Antivirus on and up to date"
    category = Category.SECURITY
    default_interval = timedelta(hours=1)
    remediation = (
        "Open the antivirus (on Windows: Windows Security > Virus & threat protection), turn "
        "real-time protection on and run 'Check for updates'. If it will not update, check that "
        "the PC is online and its date is right, then report it; do not install a second "
        "antivirus alongside."
    )
    emits = (
        ValueSpec("products", "count", "antivirus products found"),
        ValueSpec("products_enabled", "count", "products found on (or on-demand scanners present)"),
        ValueSpec("oldest_definitions_days", "days", "age of the oldest definitions in use"),
        ValueSpec("product", "", "names of the products found"),
    )
    thresholds_type = AntivirusThresholds

    def gather(
        self, source: FactSource, thresholds: AntivirusThresholds
    ) -> AntivirusFacts | Unavailable:
        return source.antivirus()

    def evaluate(self, facts: AntivirusFacts, thresholds: AntivirusThresholds) -> Outcome:
        # An on-demand scanner (enabled None) counts as present: it has no off switch to read.
        active = [p for p in facts.products if p.enabled is not False]
        values = [
            Measured("products", len(facts.products), "count"),
            Measured("products_enabled", len(active), "count"),
        ]
        if facts.products:
            values.append(Measured("product", ", ".join(p.name for p in facts.products), ""))
        ages = [p.definitions_age_days for p in active if p.definitions_age_days is not None]
        if ages:
            values.append(Measured("oldest_definitions_days", round(max(ages), 1), "days"))
        if not active:
            return Outcome(*self._none_active(facts, thresholds), tuple(values))
        outdated = [p for p in active if _outdated(p, thresholds)]
        if outdated:
            names = ", ".join(_describe(p) for p in outdated)
            return Outcome(CheckStatus.WARNING, f"definitions out of date: {names}", tuple(values))
        summary = ", ".join(_describe(p) for p in active)
        return Outcome(CheckStatus.OK, summary, tuple(values))

    @staticmethod
    def _none_active(
        facts: AntivirusFacts, thresholds: AntivirusThresholds
    ) -> tuple[CheckStatus, str]:
        off = ", ".join(f"{p.name} (off)" for p in facts.products)
        if facts.complete:
            found = f": {off}" if off else ", and none is registered with Security Center"
            return CheckStatus.CRITICAL, f"no antivirus enabled{found}"
        looked = "; ".join(facts.looked_for) or "known scanners"
        found = f"{off}; " if off else ""
        if thresholds.require_antivirus:
            return CheckStatus.WARNING, f"no antivirus found: {found}looked for {looked}"
        return (
            CheckStatus.UNKNOWN,
            f"no antivirus product known on this OS: {found}looked for {looked}; "
            "set require_antivirus to be warned",
        )


def _outdated(product: AntivirusProduct, thresholds: AntivirusThresholds) -> bool:
    if product.up_to_date is False:
        return True
    limit = (
        thresholds.max_xprotect_age_days_warning
        if product.source == "XProtect"
        else thresholds.max_definitions_age_days_warning
    )
    return product.definitions_age_days is not None and product.definitions_age_days > limit


def _describe(product: AntivirusProduct) -> str:
    state = {True: "on", False: "off", None: "present"}[product.enabled]
    text = f"{product.name} {state}"
    if product.definitions_age_days is not None:
        text += f", definitions {product.definitions_age_days:.1f} days old"
    elif product.up_to_date is not None:
        text += ", definitions " + ("up to date" if product.up_to_date else "out of date")
    if product.version:
        text += f" (version {product.version})"
    return text
