"""security.firewall: the PC's firewall is on and blocks unsolicited incoming connections."""

from __future__ import annotations

from datetime import timedelta

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.security.models import FirewallFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class FirewallThresholds(Thresholds):
    require_inbound_filtering: bool = True
    """A firewall that is on but lets every incoming connection through counts as off."""


class FirewallEnabled(Check[FirewallFacts, FirewallThresholds]):
    id = "security.firewall"
    title = "Firewall on"
    category = Category.SECURITY
    default_interval = timedelta(minutes=15)
    remediation = (
        "Turn the firewall back on: on Windows in Windows Security > Firewall & network "
        "protection (every network type), on a Mac in System Settings > Network > Firewall, on "
        "Linux with the firewall tool in use (e.g. `sudo ufw enable`). If a program asked for it "
        "to be turned off, report which one instead of leaving it off."
    )
    emits = (
        ValueSpec(
            "backend", "", "the firewall that answered (ufw, nftables, Windows Firewall, ...)"
        ),
        ValueSpec("enabled", "bool", "1 when the firewall is on"),
        ValueSpec("filters_inbound", "bool", "1 when incoming traffic is dropped or rejected"),
    )
    thresholds_type = FirewallThresholds

    def gather(
        self, source: FactSource, thresholds: FirewallThresholds
    ) -> FirewallFacts | Unavailable:
        return source.firewall()

    def evaluate(self, facts: FirewallFacts, thresholds: FirewallThresholds) -> Outcome:
        values = (
            Measured("backend", facts.backend, ""),
            Measured("enabled", int(facts.enabled), "bool"),
            Measured("filters_inbound", int(facts.filters_inbound), "bool"),
        )
        said = f"{facts.backend}: {facts.detail}"
        if facts.others:
            said += f" ({'; '.join(facts.others)})"
        if not facts.enabled:
            # Windows keeps one firewall per network type; any one off is a hole on that network.
            partly = any(profile.enabled for profile in facts.profiles)
            return Outcome(
                CheckStatus.CRITICAL, f"firewall {'partly ' if partly else ''}off: {said}", values
            )
        if not facts.filters_inbound:
            if thresholds.require_inbound_filtering:
                summary = f"firewall does not block incoming connections: {said}"
                return Outcome(CheckStatus.CRITICAL, summary, values)
            return Outcome(CheckStatus.OK, f"firewall on, not filtering inbound: {said}", values)
        return Outcome(CheckStatus.OK, f"firewall on, {said}", values)
