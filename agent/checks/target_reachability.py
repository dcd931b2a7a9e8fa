"""network.target_reachability: checks that the servers people rely on answer, promptly."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.network.models import TargetReach, TargetsFacts
from agent.facts.network.targets import parse_target
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


def _valid_target(text: str) -> str:
    parse_target(text)  # its ValueError becomes the policy's validation error
    return text.strip()


TargetText = Annotated[str, AfterValidator(_valid_target)]
NO_TARGETS_HINT = (
    'add hosts ("fileserver.corp.example") or services ("mail.corp.example:443") to '
    "this check's targets in the policy"
)


class TargetReachabilityThresholds(Thresholds):
    targets: tuple[TargetText, ...] = Field(default=(), max_length=16)
    """Each is a host, probed by ICMP (TCP to common ports where ICMP is not permitted), or a
    "host:port", probed by a TCP connect to that port, where a refusal means the service is down."""
    probes: int = Field(default=3, ge=1, le=10)
    timeout_seconds: float = Field(default=1.0, gt=0, le=10)
    max_loss_percent_warning: float = Field(default=34, ge=0, lt=100)
    """Above this share of lost probes: warning. Every probe lost is critical (unreachable)."""
    max_rtt_ms_warning: float = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _distinct_targets(self) -> Self:
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets must not repeat")
        return self


class TargetReachability(Check[TargetsFacts, TargetReachabilityThresholds]):
    id = "network.target_reachability"
    title = "Important servers reachable"
    category = Category.NETWORK
    default_interval = timedelta(minutes=2)
    remediation = (
        "Check that the PC is on the network (and on the VPN if the server is internal). If only "
        "this PC cannot reach the server, restart the network connection or the PC; if colleagues "
        "cannot reach it either, report the named server or service as down."
    )
    emits = (
        ValueSpec("targets", "count", "targets probed"),
        ValueSpec("targets_unreachable", "count", "targets that answered no probe"),
        ValueSpec("worst_loss_percent", "%", "highest share of lost probes among the targets"),
        ValueSpec("slowest_avg_rtt_ms", "ms", "highest average round-trip time among the targets"),
        ValueSpec("target", "", "the target in the worst state"),
    )
    thresholds_type = TargetReachabilityThresholds

    def gather(
        self, source: FactSource, thresholds: TargetReachabilityThresholds
    ) -> TargetsFacts | Unavailable:
        return source.target_reachability(
            thresholds.targets, thresholds.probes, thresholds.timeout_seconds
        )

    def evaluate(self, facts: TargetsFacts, thresholds: TargetReachabilityThresholds) -> Outcome:
        if not facts.targets:
            return Outcome(CheckStatus.UNKNOWN, f"no targets configured: {NO_TARGETS_HINT}")
        judged = [_judge(reach, thresholds) for reach in facts.targets]
        probed = [reach.probed for reach in facts.targets if reach.probed is not None]
        unreachable = sum(1 for status, _ in judged if status is CheckStatus.CRITICAL)
        values = [
            Measured("targets", len(facts.targets), "count"),
            Measured("targets_unreachable", unreachable, "count"),
        ]
        if probed:
            values.append(
                Measured("worst_loss_percent", round(max(p.loss_percent for p in probed), 1), "%")
            )
        rtts = [p.avg_rtt_ms for p in probed if p.avg_rtt_ms is not None]
        if rtts:
            values.append(Measured("slowest_avg_rtt_ms", round(max(rtts), 2), "ms"))
        # CRITICAL > WARNING > OK in the proto numbering; a target we could not probe (UNKNOWN)
        # outranks OK but not a real failure.
        rank = {CheckStatus.OK: 0, CheckStatus.UNKNOWN: 1, CheckStatus.WARNING: 2}
        worst = max(range(len(judged)), key=lambda i: rank.get(judged[i][0], 3))
        status = judged[worst][0]
        values.append(Measured("target", facts.targets[worst].target, ""))
        if status is CheckStatus.OK:
            summary = f"{len(judged)} target{'s' if len(judged) > 1 else ''} reachable: " + (
                "; ".join(reason for _, reason in judged)
            )
            return Outcome(status, summary, tuple(values))
        problems = [reason for s, reason in judged if s is not CheckStatus.OK]
        return Outcome(status, "; ".join(problems), tuple(values))


def _judge(reach: TargetReach, t: TargetReachabilityThresholds) -> tuple[CheckStatus, str]:
    """One target's status and its part of the summary."""
    probed = reach.probed
    if probed is None:
        if not reach.resolved:
            return CheckStatus.CRITICAL, f"{reach.target} unreachable: {reach.error}"
        return CheckStatus.UNKNOWN, f"{reach.target} could not be probed: {reach.error}"
    avg = probed.avg_rtt_ms
    if avg is None:
        why = f" ({reach.error})" if reach.error else ""
        return (
            CheckStatus.CRITICAL,
            f"{reach.target} unreachable: no answer to {probed.sent} probes ({probed.method}){why}",
        )
    loss = probed.loss_percent
    text = f"{reach.target} {loss:.0f}% loss, {avg:.1f} ms ({probed.method})"
    if loss > t.max_loss_percent_warning:
        return CheckStatus.WARNING, f"{text}, warning above {t.max_loss_percent_warning:g}% loss"
    if avg > t.max_rtt_ms_warning:
        return CheckStatus.WARNING, f"{text}, warning above {t.max_rtt_ms_warning:g} ms"
    return CheckStatus.OK, text
