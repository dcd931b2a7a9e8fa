"""security.firewall judged on recorded firewall facts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.firewall import FirewallEnabled
from agent.facts.models import Unavailable
from agent.facts.security.models import FirewallFacts, FirewallProfile
from remdiag.vocabulary import CheckStatus

CHECK = FirewallEnabled()
DEFAULTS = CHECK.thresholds()

UFW_ON = FirewallFacts("ufw", True, True, "active, default deny (incoming)")
NFT_OPEN = FirewallFacts(
    "nftables", True, False, "ip filter INPUT: accept everything", others=("ufw: inactive",)
)
ALL_OFF = FirewallFacts(
    "nftables", False, False, "empty ruleset", others=("ufw is not installed", "iptables: no rules")
)
WINDOWS_PUBLIC_OFF = FirewallFacts(
    "Windows Firewall",
    False,
    False,
    "Domain on, Private on, Public off",
    (
        FirewallProfile("Domain", True, True),
        FirewallProfile("Private", True, True),
        FirewallProfile("Public", False, True),
    ),
)

# The firewall is on or it is not: there is no WARNING to record.
RECORDED = [UFW_ON, NFT_OPEN, ALL_OFF, WINDOWS_PUBLIC_OFF]


def test_filtering_firewall_is_ok() -> None:
    outcome = CHECK.evaluate(UFW_ON, DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "firewall on, ufw: active, default deny (incoming)"
    assert {v.name: v.value for v in outcome.values} == {
        "backend": "ufw",
        "enabled": 1,
        "filters_inbound": 1,
    }


def test_firewall_off_is_critical_and_says_what_each_tool_said() -> None:
    outcome = CHECK.evaluate(ALL_OFF, DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "firewall off: nftables: empty ruleset (ufw is not installed; iptables: no rules)"
    )


def test_one_windows_profile_off_is_critical_partly_off() -> None:
    outcome = CHECK.evaluate(WINDOWS_PUBLIC_OFF, DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "firewall partly off: Windows Firewall: Domain on, Private on, Public off"
    )


def test_rules_that_let_everything_in_are_critical() -> None:
    outcome = CHECK.evaluate(NFT_OPEN, DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("firewall does not block incoming connections: nftables")


def test_policy_may_accept_a_firewall_that_does_not_filter_inbound() -> None:
    lenient = CHECK.thresholds({"require_inbound_filtering": False})
    assert CHECK.evaluate(NFT_OPEN, lenient).status is CheckStatus.OK
    assert CHECK.evaluate(ALL_OFF, lenient).status is CheckStatus.CRITICAL


def test_no_backend_to_ask_is_unknown_with_the_reasons() -> None:
    reason = (
        "no firewall tool could be asked: ufw is not installed; nft is not installed; "
        "iptables is not installed; iptables-legacy is not installed"
    )
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides", [{"require_inbound_filtering": "sometimes"}, {"enabled": True}]
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
