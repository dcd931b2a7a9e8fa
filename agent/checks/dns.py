"""network.dns: checks that the PC can turn names into addresses, and fast enough."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, StringConstraints

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import DnsFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

HostName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]


class DnsThresholds(Thresholds):
    names: tuple[HostName, ...] = Field(default=(), max_length=16)
    """Names to resolve, e.g. the company's mail and file servers; none means nothing to judge."""
    timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    max_resolve_ms_warning: float = Field(default=500, ge=0)


class DnsResolution(Check[DnsFacts, DnsThresholds]):
    id = "network.dns"
    title = "Name resolution (DNS)"
    category = Category.NETWORK
    default_interval = timedelta(minutes=2)
    remediation = (
        "Check that the PC is connected to the network (and to the VPN if the names are "
        "internal). Turn Wi-Fi off and on or unplug and replug the cable; if names still do not "
        "resolve, restart the router or report the DNS server named in the network settings."
    )
    emits = (
        ValueSpec("names_resolved", "count", "names that resolved"),
        ValueSpec("names_failed", "count", "names that did not resolve or timed out"),
        ValueSpec("slowest_ms", "ms", "time taken by the slowest successful lookup"),
    )
    thresholds_type = DnsThresholds

    def gather(self, source: FactSource, thresholds: DnsThresholds) -> DnsFacts | Unavailable:
        return source.dns(thresholds.names, thresholds.timeout_seconds)

    def evaluate(self, facts: DnsFacts, thresholds: DnsThresholds) -> Outcome:
        if not facts.lookups:
            return Outcome(CheckStatus.UNKNOWN, "no names configured to resolve")
        failed = [lookup for lookup in facts.lookups if lookup.error is not None]
        resolved = [lookup for lookup in facts.lookups if lookup.error is None]
        values = [
            Measured("names_resolved", len(resolved), "count"),
            Measured("names_failed", len(failed), "count"),
        ]
        slowest = max(resolved, key=lambda lookup: lookup.elapsed_ms, default=None)
        if slowest is not None:
            values.append(Measured("slowest_ms", round(slowest.elapsed_ms, 1), "ms"))
        if failed:
            names = ", ".join(f"{lookup.name} ({lookup.error})" for lookup in failed)
            return Outcome(CheckStatus.CRITICAL, f"could not resolve {names}", tuple(values))
        assert slowest is not None  # every lookup resolved, and there is at least one
        slow = [
            lookup for lookup in resolved if lookup.elapsed_ms > thresholds.max_resolve_ms_warning
        ]
        if slow:
            names = ", ".join(f"{lookup.name} took {lookup.elapsed_ms:.0f} ms" for lookup in slow)
            summary = f"slow DNS: {names} (warning above {thresholds.max_resolve_ms_warning:g} ms)"
            return Outcome(CheckStatus.WARNING, summary, tuple(values))
        summary = (
            f"resolved {len(resolved)} name{'s' if len(resolved) > 1 else ''}, "
            f"slowest {slowest.name} in {slowest.elapsed_ms:.0f} ms"
        )
        return Outcome(CheckStatus.OK, summary, tuple(values))
