"""security.antivirus judged on recorded antivirus facts (Windows, Linux, macOS)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agent.checks.antivirus import AntivirusActive
from agent.facts.models import Unavailable
from agent.facts.security.models import AntivirusFacts, AntivirusProduct
from remdiag.vocabulary import CheckStatus

CHECK = AntivirusActive()
DEFAULTS = CHECK.thresholds()
UPDATED = datetime(2023, 11, 20, 8, 0, tzinfo=UTC)


def defender(
    enabled: bool = True, up_to_date: bool = True, age: float | None = 0.4
) -> AntivirusProduct:
    return AntivirusProduct(
        "Windows Defender",
        "Security Center",
        enabled,
        up_to_date,
        UPDATED,
        age,
        "1.401.1166.0",
    )


BITDEFENDER = AntivirusProduct("Bitdefender Antivirus", "Security Center", True, True)
CLAMAV = AntivirusProduct("ClamAV", "ClamAV", True, None, UPDATED, 0.5)
LOOKED_FOR = ("ClamAV (clamd, freshclam, clamscan, signature databases)", "CrowdStrike Falcon")


def windows(*products: AntivirusProduct) -> AntivirusFacts:
    return AntivirusFacts(products, complete=True, looked_for=("Security Center",))


def elsewhere(*products: AntivirusProduct) -> AntivirusFacts:
    return AntivirusFacts(products, complete=False, looked_for=LOOKED_FOR)


RECORDED = [
    windows(defender()),  # OK
    windows(defender(up_to_date=False)),  # WARNING
    windows(defender(enabled=False)),  # CRITICAL
    elsewhere(CLAMAV),  # OK
    elsewhere(),  # UNKNOWN
]


def test_windows_defender_on_and_current_is_ok() -> None:
    outcome = CHECK.evaluate(windows(defender()), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "Windows Defender on, definitions 0.4 days old (version 1.401.1166.0)"
    )
    assert {v.name: v.value for v in outcome.values} == {
        "products": 1,
        "products_enabled": 1,
        "product": "Windows Defender",
        "oldest_definitions_days": 0.4,
    }


def test_a_third_party_product_on_beside_defender_off_is_ok() -> None:
    outcome = CHECK.evaluate(windows(defender(enabled=False), BITDEFENDER), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "Bitdefender Antivirus on, definitions up to date"


def test_security_center_saying_out_of_date_warns() -> None:
    outcome = CHECK.evaluate(windows(defender(up_to_date=False, age=None)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "definitions out of date: Windows Defender on, definitions out of date "
        "(version 1.401.1166.0)"
    )


def test_definitions_older_than_the_limit_warn() -> None:
    outcome = CHECK.evaluate(windows(defender(age=12.0)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert "definitions 12.0 days old" in outcome.summary
    lenient = CHECK.thresholds({"max_definitions_age_days_warning": 14})
    assert CHECK.evaluate(windows(defender(age=12.0)), lenient).status is CheckStatus.OK


def test_no_enabled_product_on_windows_is_critical() -> None:
    outcome = CHECK.evaluate(windows(defender(enabled=False)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "no antivirus enabled: Windows Defender (off)"


def test_no_product_registered_on_windows_is_critical() -> None:
    outcome = CHECK.evaluate(windows(), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "no antivirus enabled, and none is registered with Security Center"


def test_clamav_present_with_a_fresh_database_is_ok() -> None:
    outcome = CHECK.evaluate(elsewhere(CLAMAV), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "ClamAV on, definitions 0.5 days old"


def test_an_on_demand_scanner_counts_as_present() -> None:
    scanner = AntivirusProduct("ClamAV", "ClamAV", None, None)
    outcome = CHECK.evaluate(elsewhere(scanner), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "ClamAV present"


def test_an_old_clamav_database_warns() -> None:
    stale = AntivirusProduct("ClamAV", "ClamAV", True, None, UPDATED, 30.0)
    assert CHECK.evaluate(elsewhere(stale), DEFAULTS).status is CheckStatus.WARNING


def test_xprotect_is_judged_by_its_own_age_limit() -> None:
    xprotect = AntivirusProduct("XProtect", "XProtect", True, None, UPDATED, 20.0, "2173")
    assert CHECK.evaluate(elsewhere(xprotect), DEFAULTS).status is CheckStatus.OK
    old = AntivirusProduct("XProtect", "XProtect", True, None, UPDATED, 90.0, "2150")
    outcome = CHECK.evaluate(elsewhere(old), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "definitions out of date: XProtect on, definitions 90.0 days old (version 2150)"
    )


def test_nothing_found_where_products_cannot_be_listed_is_unknown_not_ok() -> None:
    outcome = CHECK.evaluate(elsewhere(), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == (
        "no antivirus product known on this OS: looked for ClamAV (clamd, freshclam, clamscan, "
        "signature databases); CrowdStrike Falcon; set require_antivirus to be warned"
    )


def test_nothing_found_warns_when_the_policy_requires_antivirus() -> None:
    required = CHECK.thresholds({"require_antivirus": True})
    outcome = CHECK.evaluate(elsewhere(), required)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.startswith("no antivirus found: looked for ClamAV")


def test_defender_off_on_windows_server_is_not_proof_of_no_antivirus() -> None:
    server = AntivirusFacts(
        (AntivirusProduct("Microsoft Defender Antivirus", "Defender", False, None),),
        complete=False,
        looked_for=("Security Center: Invalid namespace",),
    )
    outcome = CHECK.evaluate(server, DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert "Microsoft Defender Antivirus (off)" in outcome.summary


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "Security Center: powershell is not installed; Defender: powershell is not installed"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_definitions_age_days_warning": 0},
        {"max_definitions_age_days_warning": 400},
        {"max_xprotect_age_days_warning": -1},
        {"require_antivirus": "maybe"},
        {"max_definitions_age_days": 7},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
