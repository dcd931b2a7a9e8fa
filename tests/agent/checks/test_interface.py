"""network.interface judged on recorded interface samples."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.interface import InterfaceHealth
from agent.facts.models import InterfaceFacts, InterfacesFacts, Unavailable
from agent.facts.network.models import InterfaceSampleFacts
from remdiag.vocabulary import CheckStatus

CHECK = InterfaceHealth()
DEFAULTS = CHECK.thresholds()

LO = InterfaceFacts("lo", True, 0, 65536, ("127.0.0.1", "::1"))
ETH = InterfaceFacts("eth0", True, 1000, 1500, ("192.0.2.20", "fe80::1%eth0"))
WLAN = InterfaceFacts("wlan0", True, 0, 1500, ("198.51.100.7",))
DOCKER_DOWN = InterfaceFacts("docker0", False, 0, 1500, ("172.17.0.1",))
LINK_LOCAL_ONLY = InterfaceFacts("enp3s0", False, 0, 1500, ("169.254.10.2", "fe80::2%enp3s0"))


def sample(*interfaces: InterfaceFacts) -> InterfaceSampleFacts:
    return InterfaceSampleFacts(InterfacesFacts((LO, *interfaces)))


def grown(
    iface: InterfaceFacts, *, errors: int = 0, drops: int = 0, seconds: float = 60.0
) -> InterfaceSampleFacts:
    """`iface` now and `seconds` earlier, its error and drop counters grown in between."""
    before = dataclasses.replace(iface, errors_in=5, errors_out=1, drops_in=100)
    after = dataclasses.replace(before, errors_in=5 + errors, drops_in=100 + drops)
    return InterfaceSampleFacts(
        InterfacesFacts((LO, after)), InterfacesFacts((LO, before)), seconds
    )


RECORDED = [
    sample(ETH, DOCKER_DOWN),
    sample(InterfaceFacts("eth0", False, 0, 1500, ("192.0.2.20",))),
    grown(ETH, errors=30),
    grown(ETH, drops=5),
    sample(),
]


def values(outcome: Outcome) -> dict[str, Any]:
    return {value.name: value.value for value in outcome.values}


def test_addressed_interfaces_up_are_ok_and_virtual_bridges_are_ignored() -> None:
    outcome = CHECK.evaluate(sample(ETH, WLAN, DOCKER_DOWN, LINK_LOCAL_ONLY), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "2 interfaces up: eth0, wlan0"
    assert values(outcome) == {"interfaces_expected": 2, "interfaces_down": 0}


def test_an_addressed_interface_that_is_down_is_critical() -> None:
    down = InterfaceFacts("eth0", False, 0, 1500, ("192.0.2.20",))
    outcome = CHECK.evaluate(sample(down, WLAN), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "eth0 is down"
    assert values(outcome)["interface"] == "eth0"


def test_listed_interfaces_are_judged_even_without_an_address_and_may_be_missing() -> None:
    thresholds = CHECK.thresholds({"interfaces": ["enp3s0", "ETH0", "wwan0"]})
    outcome = CHECK.evaluate(sample(ETH, LINK_LOCAL_ONLY), thresholds)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "enp3s0 is down, wwan0 is missing"
    assert values(outcome)["interfaces_down"] == 2


def test_a_listed_interface_that_is_up_is_ok_whatever_its_name_pattern() -> None:
    docker_up = InterfaceFacts("docker0", True, 0, 1500, ("172.17.0.1",))
    outcome = CHECK.evaluate(sample(docker_up), CHECK.thresholds({"interfaces": ["docker0"]}))
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "1 interface up: docker0"


def test_ignored_patterns_are_policy_and_any_case() -> None:
    thresholds = CHECK.thresholds({"ignored_interfaces": ["WLAN*"]})
    down = InterfaceFacts("wlan0", False, 0, 1500, ("198.51.100.7",))
    outcome = CHECK.evaluate(sample(ETH, down), thresholds)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "1 interface up: eth0"


def test_no_addressed_interface_at_all_is_critical() -> None:
    outcome = CHECK.evaluate(sample(LINK_LOCAL_ONLY), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "no network connection: no interface besides loopback has an address"


def test_growing_errors_warn_with_the_rate() -> None:
    outcome = CHECK.evaluate(grown(ETH, errors=30, seconds=120.0), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "eth0 15 errors/min (warning above 10)"
    assert values(outcome) == {
        "interfaces_expected": 1,
        "interfaces_down": 0,
        "errors_per_minute": 15.0,
        "drops_per_minute": 0.0,
        "interface": "eth0",
    }


def test_growing_drops_warn_on_their_own_limit() -> None:
    outcome = CHECK.evaluate(grown(ETH, drops=500, seconds=60.0), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "eth0 500 drops/min (warning above 100)"


def test_slow_growth_is_ok_and_reported() -> None:
    outcome = CHECK.evaluate(grown(ETH, errors=2, drops=5), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert values(outcome)["errors_per_minute"] == 2.0
    assert values(outcome)["drops_per_minute"] == 5.0


def test_counters_that_went_back_are_a_reset_not_growth() -> None:
    facts = grown(ETH, errors=30)
    reset = InterfaceSampleFacts(facts.previous or facts.current, facts.current, 60.0)
    outcome = CHECK.evaluate(reset, DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert "errors_per_minute" not in values(outcome)


def test_the_first_sample_judges_only_up_and_down() -> None:
    outcome = CHECK.evaluate(sample(ETH), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert "errors_per_minute" not in values(outcome)


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot list network interfaces: denied"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: cannot list network interfaces: denied"


@pytest.mark.parametrize(
    "overrides",
    [
        {"interfaces": [""]},
        {"interfaces": ["x" * 65]},
        {"interfaces": ["eth0"] * 33},
        {"max_errors_per_minute_warning": -1},
        {"max_drops_per_minute_warning": float("nan")},
        {"max_errors_per_minute": 10},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
