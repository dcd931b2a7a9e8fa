"""network.gateway judged on recorded probes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.gateway import GatewayReachable
from agent.facts.models import GatewayFacts, Unavailable
from remdiag.vocabulary import CheckStatus

CHECK = GatewayReachable()
DEFAULTS = CHECK.thresholds()


def probes(*rtts: float, sent: int = 3, method: str = "icmp") -> GatewayFacts:
    return GatewayFacts("192.0.2.1", method, sent, len(rtts), rtts)


RECORDED = [probes(1.0, 2.0, 3.0), probes(250.0, 260.0, 270.0), probes(1.0), probes(sent=3)]


def test_all_answered_quickly_is_ok() -> None:
    outcome = CHECK.evaluate(probes(1.0, 2.0, 3.0), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "gateway 192.0.2.1 answered 3 of 3 probes (icmp), 0% loss, 2.0 ms average"
    )


def test_slow_answers_warn() -> None:
    outcome = CHECK.evaluate(probes(250.0, 260.0, 270.0), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("(warning above 200 ms)")


def test_losing_probes_warns() -> None:
    outcome = CHECK.evaluate(probes(1.0, sent=3), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("67% loss, 1.0 ms average (warning above 34% loss)")


def test_no_answer_at_all_is_critical_unreachable() -> None:
    outcome = CHECK.evaluate(probes(sent=3, method="tcp:53,443,80"), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "gateway 192.0.2.1 unreachable: no answer to 3 probes (tcp:53,443,80)"


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "this machine has no default route; set the gateway check's target in the policy"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"probes": 0},
        {"probes": 11},
        {"timeout_seconds": 0},
        {"max_loss_percent_warning": 100},  # warning above critical (99)
        {"max_loss_percent_critical": 101},
        {"max_rtt_ms_warning": -1},
        {"target": ""},
        {"port": 80},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
