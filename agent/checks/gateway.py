"""network.gateway: checks that the router (or a chosen host) answers, without loss or lag."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import GatewayFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

Target = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]


class GatewayThresholds(Thresholds):
    target: Target | None = None
    """Host name or address to probe; None means this machine's default gateway."""
    probes: int = Field(default=3, ge=1, le=10)
    timeout_seconds: float = Field(default=1.0, gt=0, le=10)
    max_loss_percent_warning: float = Field(default=34, ge=0, le=100)
    max_loss_percent_critical: float = Field(default=99, ge=0, le=100)
    max_rtt_ms_warning: float = Field(default=200, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_loss_percent_warning > self.max_loss_percent_critical:
            raise ValueError("max_loss_percent_warning must not exceed max_loss_percent_critical")
        return self


class GatewayReachable(Check[GatewayFacts, GatewayThresholds]):
    id = "network.gateway"
    title = "Gateway reachable"
    category = Category.NETWORK
    default_interval = timedelta(minutes=1)
    remediation = (
        "Check the network cable or the Wi-Fi connection, then restart the router (unplug it "
        "for ten seconds). If other PCs nearby have the same problem, report a network outage."
    )
    emits = (
        ValueSpec("loss_percent", "%", "share of probes that got no answer"),
        ValueSpec("avg_rtt_ms", "ms", "average round-trip time of the answered probes"),
        ValueSpec("probes_sent", "count", "probes sent"),
        ValueSpec("probes_received", "count", "probes answered"),
        ValueSpec("method", "", 'how it was probed: "icmp" or "tcp:<port>"'),
    )
    thresholds_type = GatewayThresholds

    def gather(
        self, source: FactSource, thresholds: GatewayThresholds
    ) -> GatewayFacts | Unavailable:
        return source.gateway(thresholds.target, thresholds.probes, thresholds.timeout_seconds)

    def evaluate(self, facts: GatewayFacts, thresholds: GatewayThresholds) -> Outcome:
        t = thresholds
        loss = facts.loss_percent
        avg = facts.avg_rtt_ms
        status = grade_max(loss, t.max_loss_percent_warning, t.max_loss_percent_critical)
        values = [
            Measured("loss_percent", round(loss, 1), "%"),
            Measured("probes_sent", facts.sent, "count"),
            Measured("probes_received", facts.received, "count"),
            Measured("method", facts.method, ""),
        ]
        if avg is None:
            summary = f"gateway {facts.target} unreachable: no answer to {facts.sent} probes"
            return Outcome(status, f"{summary} ({facts.method})", tuple(values))
        values.append(Measured("avg_rtt_ms", round(avg, 2), "ms"))
        summary = (
            f"gateway {facts.target} answered {facts.received} of {facts.sent} probes "
            f"({facts.method}), {loss:.0f}% loss, {avg:.1f} ms average"
        )
        if status is not CheckStatus.OK:
            limit = (
                t.max_loss_percent_critical
                if status is CheckStatus.CRITICAL
                else t.max_loss_percent_warning
            )
            summary += f" ({status.label} above {limit:g}% loss)"
        elif avg > t.max_rtt_ms_warning:
            status = CheckStatus.WARNING
            summary += f" (warning above {t.max_rtt_ms_warning:g} ms)"
        return Outcome(status, summary, tuple(values))
