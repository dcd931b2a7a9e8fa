"""network.wifi_signal judged on recorded Wi-Fi links."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.wifi_signal import WifiSignal
from agent.facts.models import Unavailable
from agent.facts.network.models import WifiFacts, WifiLink
from remdiag.vocabulary import CheckStatus

CHECK = WifiSignal()
DEFAULTS = CHECK.thresholds()

STRONG = WifiLink("wlan0", True, "CorpNet", signal_dbm=-56.0, quality_percent=77.1)
FAIR = WifiLink("en0", True, None, signal_dbm=-74.0, noise_dbm=-92.0)
WEAK = WifiLink("Wi-Fi", True, "Guest-WiFi", signal_dbm=-84.0, quality_percent=30.0)
QUALITY_ONLY = WifiLink("wlan1", True, quality_percent=35.0)
OFF = WifiLink("wlan0", connected=False)

RECORDED = [WifiFacts((STRONG,)), WifiFacts((FAIR,)), WifiFacts((WEAK,)), WifiFacts((OFF,))]


def values(outcome: Outcome) -> dict[str, Any]:
    return {value.name: value.value for value in outcome.values}


def test_a_strong_signal_is_ok() -> None:
    outcome = CHECK.evaluate(WifiFacts((STRONG,)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "wlan0 on CorpNet: Wi-Fi signal -56 dBm, 77% quality"
    assert values(outcome) == {
        "interface": "wlan0",
        "signal_dbm": -56.0,
        "quality_percent": 77.1,
        "ssid": "CorpNet",
    }


def test_a_fair_signal_warns() -> None:
    outcome = CHECK.evaluate(WifiFacts((FAIR,)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "en0: Wi-Fi signal -74 dBm (warning below -70 dBm)"
    assert values(outcome)["noise_dbm"] == -92.0


def test_a_weak_signal_is_critical() -> None:
    outcome = CHECK.evaluate(WifiFacts((WEAK,)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "Wi-Fi on Guest-WiFi: Wi-Fi signal -84 dBm, 30% quality (critical below -80 dBm)"
    )


def test_quality_alone_is_judged_where_the_os_gives_no_dbm() -> None:
    outcome = CHECK.evaluate(WifiFacts((QUALITY_ONLY,)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "wlan1: Wi-Fi signal 35% quality (warning below 40% quality)"


def test_the_weakest_connected_link_is_judged() -> None:
    outcome = CHECK.evaluate(WifiFacts((STRONG, OFF, FAIR)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert values(outcome)["interface"] == "en0"


def test_both_scales_are_named_when_both_are_crossed() -> None:
    link = WifiLink("wlan0", True, signal_dbm=-90.0, quality_percent=15.0)
    outcome = CHECK.evaluate(WifiFacts((link,)), DEFAULTS)
    assert outcome.summary.endswith("(critical below -80 dBm, below 20% quality)")


def test_policy_limits_apply() -> None:
    thresholds = CHECK.thresholds({"min_signal_dbm_warning": -60, "min_signal_dbm_critical": -65})
    assert CHECK.evaluate(WifiFacts((FAIR,)), thresholds).status is CheckStatus.CRITICAL


def test_wifi_not_connected_is_unknown() -> None:
    outcome = CHECK.evaluate(WifiFacts((OFF,)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "Wi-Fi not connected (wlan0)"


def test_connected_without_a_level_is_unknown() -> None:
    outcome = CHECK.evaluate(WifiFacts((WifiLink("wlan0", True, "CorpNet"),)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "Wi-Fi connected (wlan0) but the OS gives no signal level"


def test_no_links_is_unknown() -> None:
    assert CHECK.evaluate(WifiFacts(()), DEFAULTS).status is CheckStatus.UNKNOWN


def test_a_wired_machine_is_unknown_and_says_why() -> None:
    outcome = CHECK.judge(Unavailable("no Wi-Fi interface"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: no Wi-Fi interface"


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_signal_dbm_warning": -85},  # below critical (-80)
        {"min_signal_dbm_critical": 1},
        {"min_signal_dbm_warning": -121},
        {"min_quality_percent_warning": 10},  # below critical (20)
        {"min_quality_percent_critical": 101},
        {"min_signal_dbm_warning": float("nan")},
        {"min_rssi_warning": -70},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
