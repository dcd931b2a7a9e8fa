"""network.target_reachability judged on recorded probes of configured targets."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.target_reachability import TargetReachability
from agent.facts.live import LiveFacts
from agent.facts.models import GatewayFacts, Unavailable
from agent.facts.network.models import TargetReach, TargetsFacts
from remdiag.vocabulary import CheckStatus

CHECK = TargetReachability()
DEFAULTS = CHECK.thresholds({"targets": ["fileserver.corp.example", "mail.corp.example:443"]})


def reach(
    target: str, *rtts: float, sent: int = 3, method: str = "icmp", error: str = ""
) -> TargetReach:
    address = "192.0.2.10"
    return TargetReach(target, GatewayFacts(address, method, sent, len(rtts), rtts), error=error)


FILESERVER_OK = reach("fileserver.corp.example", 1.0, 2.0, 3.0)
MAIL_OK = reach("mail.corp.example:443", 20.0, 22.0, 24.0, method="tcp:443")
MAIL_SLOW = reach("mail.corp.example:443", 400.0, 420.0, 380.0, method="tcp:443")
MAIL_LOSSY = reach("mail.corp.example:443", 20.0, method="tcp:443", error="timed out")
MAIL_REFUSED = reach("mail.corp.example:443", method="tcp:443", error="Connection refused")
UNRESOLVED = TargetReach(
    "intranet.corp.example",
    None,
    resolved=False,
    error="cannot resolve intranet.corp.example: Name or service not known",
)
NOT_PROBED = TargetReach(
    "[2001:db8::10]:443",
    None,
    error="cannot probe [2001:db8::10]:443: Address family not supported",
)

RECORDED = [
    TargetsFacts((FILESERVER_OK, MAIL_OK)),
    TargetsFacts((FILESERVER_OK, MAIL_SLOW)),
    TargetsFacts((FILESERVER_OK, MAIL_REFUSED)),
    TargetsFacts((UNRESOLVED,)),
    TargetsFacts(()),
]


def values(outcome: Outcome) -> dict[str, Any]:
    return {value.name: value.value for value in outcome.values}


def test_every_target_answering_quickly_is_ok() -> None:
    outcome = CHECK.evaluate(TargetsFacts((FILESERVER_OK, MAIL_OK)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "2 targets reachable: fileserver.corp.example 0% loss, 2.0 ms (icmp); "
        "mail.corp.example:443 0% loss, 22.0 ms (tcp:443)"
    )
    assert values(outcome) == {
        "targets": 2,
        "targets_unreachable": 0,
        "worst_loss_percent": 0.0,
        "slowest_avg_rtt_ms": 22.0,
        "target": "fileserver.corp.example",
    }


def test_a_slow_target_warns() -> None:
    outcome = CHECK.evaluate(TargetsFacts((FILESERVER_OK, MAIL_SLOW)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "mail.corp.example:443 0% loss, 400.0 ms (tcp:443), warning above 300 ms"
    )
    assert values(outcome)["target"] == "mail.corp.example:443"


def test_losing_probes_warns() -> None:
    outcome = CHECK.evaluate(TargetsFacts((MAIL_LOSSY,)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "mail.corp.example:443 67% loss, 20.0 ms (tcp:443), warning above 34% loss"
    )


def test_a_refused_service_port_is_critical_and_says_so() -> None:
    outcome = CHECK.evaluate(TargetsFacts((FILESERVER_OK, MAIL_REFUSED)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "mail.corp.example:443 unreachable: no answer to 3 probes (tcp:443) (Connection refused)"
    )
    assert values(outcome)["targets_unreachable"] == 1
    assert values(outcome)["worst_loss_percent"] == 100.0


def test_a_name_that_does_not_resolve_is_critical() -> None:
    outcome = CHECK.evaluate(TargetsFacts((UNRESOLVED, MAIL_SLOW)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "intranet.corp.example unreachable: cannot resolve intranet.corp.example: "
        "Name or service not known; "
        "mail.corp.example:443 0% loss, 400.0 ms (tcp:443), warning above 300 ms"
    )
    assert values(outcome)["target"] == "intranet.corp.example"


def test_a_target_this_pc_cannot_probe_is_unknown_not_ok() -> None:
    outcome = CHECK.evaluate(TargetsFacts((FILESERVER_OK, NOT_PROBED)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == (
        "[2001:db8::10]:443 could not be probed: "
        "cannot probe [2001:db8::10]:443: Address family not supported"
    )


def test_a_real_failure_outranks_a_target_that_could_not_be_probed() -> None:
    outcome = CHECK.evaluate(TargetsFacts((NOT_PROBED, MAIL_SLOW)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING


def test_no_targets_configured_is_unknown_with_a_hint() -> None:
    outcome = CHECK.evaluate(TargetsFacts(()), CHECK.thresholds())
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.startswith("no targets configured: add hosts")


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("no network stack"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: no network stack"


def test_targets_are_normalised() -> None:
    thresholds = CHECK.thresholds({"targets": [" files.example ", "[::1]:8443"]})
    assert thresholds.targets == ("files.example", "[::1]:8443")


@pytest.mark.parametrize(
    "overrides",
    [
        {"targets": [""]},
        {"targets": ["host:0"]},
        {"targets": ["host:https"]},
        {"targets": ["two words"]},
        {"targets": ["a.example", "a.example"]},
        {"targets": [f"t{i}.example" for i in range(17)]},
        {"probes": 0},
        {"probes": 11},
        {"timeout_seconds": 0},
        {"max_loss_percent_warning": 100},
        {"max_rtt_ms_warning": -1},
        {"target": "a.example"},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)


def test_gathers_and_judges_loopback_targets_on_this_machine() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        thresholds = CHECK.thresholds(
            {"targets": ["127.0.0.1", f"localhost:{port}"], "probes": 2, "timeout_seconds": 2}
        )
        outcome = CHECK.judge(CHECK.gather(LiveFacts(), thresholds), thresholds)
    assert outcome.status is CheckStatus.OK, outcome.summary
    assert values(outcome)["targets_unreachable"] == 0
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
