"""Windows security parsers on recorded PowerShell, netsh and manage-bde outputs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.security import windows
from agent.facts.security.models import (
    AntivirusFacts,
    AntivirusProduct,
    EncryptionState,
    FirewallFacts,
    FirewallProfile,
    VolumeEncryption,
)

FIXTURES = Path(__file__).parents[3] / "fixtures" / "security"
NOW = datetime(2023, 11, 20, 12, 0, tzinfo=UTC)


def fixture(name: str) -> str:
    # newline="" keeps the CRLF line ends Windows tools print.
    with open(FIXTURES / name, encoding="utf-8", newline="") as handle:
        return handle.read()


# --- firewall ----------------------------------------------------------------------------------


def test_every_profile_on_and_blocking_filters() -> None:
    facts = windows.parse_firewall_profiles(fixture("windows_firewall_profiles_on.json"))
    assert isinstance(facts, FirewallFacts)
    assert facts.enabled and facts.filters_inbound
    assert facts.detail == "Domain on, Private on, Public on"
    # NotConfigured is the Windows default: blocking.
    assert facts.profiles[1] == FirewallProfile("Private", True, True)


def test_numeric_enums_and_a_profile_off() -> None:
    facts = windows.parse_firewall_profiles(fixture("windows_firewall_profiles_public_off.json"))
    assert isinstance(facts, FirewallFacts)
    assert not facts.enabled and not facts.filters_inbound
    assert facts.detail == "Domain on, Private on (allows inbound), Public off"


def test_unexpected_profile_values_are_unavailable() -> None:
    text = '{"Name": "Domain", "Enabled": "Maybe", "DefaultInboundAction": "Block"}'
    assert isinstance(windows.parse_firewall_profiles(text), Unavailable)


def test_no_profiles_is_unavailable() -> None:
    assert isinstance(windows.parse_firewall_profiles(""), Unavailable)


def test_netsh_profiles_state() -> None:
    facts = windows.parse_netsh_firewall(fixture("windows_netsh_allprofiles_state.txt"))
    assert isinstance(facts, FirewallFacts)
    assert [(p.name, p.enabled) for p in facts.profiles] == [
        ("Domain", True),
        ("Private", True),
        ("Public", False),
    ]
    assert not facts.enabled


# --- antivirus ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "enabled", "up_to_date"),
    [
        (397568, True, True),  # 0x061100 Defender on, current
        (397312, True, True),  # 0x061000
        (393472, False, True),  # 0x060100 Defender off (another product took over)
        (397584, True, False),  # 0x061110 on, definitions out of date
        (266240, True, True),  # 0x041000 third-party product on
        (262160, False, False),  # 0x040010 off and out of date
        (401664, False, True),  # 0x062100 snoozed
    ],
)
def test_product_state_decoding(state: int, enabled: bool, up_to_date: bool) -> None:
    assert windows.decode_product_state(state) == (enabled, up_to_date)


def test_security_center_list() -> None:
    products = windows.parse_security_center(fixture("windows_security_center_two.json"))
    assert isinstance(products, tuple)
    assert [(p.name, p.enabled, p.up_to_date) for p in products] == [
        ("Windows Defender", False, True),
        ("Bitdefender Antivirus", True, True),
    ]
    assert products[0].detail == "productState 0x060100"


def test_security_center_single_object() -> None:
    products = windows.parse_security_center(fixture("windows_security_center_defender.json"))
    assert isinstance(products, tuple) and len(products) == 1
    assert products[0].enabled is True


def test_security_center_without_products_is_an_empty_list() -> None:
    assert windows.parse_security_center("") == ()


def test_security_center_with_a_bad_state_is_unavailable() -> None:
    text = '{"displayName": "X", "productState": "abc"}'
    assert isinstance(windows.parse_security_center(text), Unavailable)


def test_defender_status_from_windows_powershell() -> None:
    product = windows.parse_defender_status(fixture("windows_mp_computer_status_ps51.json"), NOW)
    assert product == AntivirusProduct(
        "Microsoft Defender Antivirus",
        "Defender",
        True,
        None,
        definitions_updated=datetime(2023, 11, 20, 8, 0, tzinfo=UTC),
        definitions_age_days=0.0,
        version="1.401.1166.0",
        detail="real-time protection on",
    )


def test_defender_status_from_powershell_7() -> None:
    product = windows.parse_defender_status(fixture("windows_mp_computer_status_ps7.json"), NOW)
    assert isinstance(product, AntivirusProduct)
    assert product.definitions_updated == datetime(2023, 11, 8, 8, 0, tzinfo=UTC)
    assert product.definitions_age_days == 12.0
    assert product.detail == "real-time protection off"


def test_defender_signatures_never_updated() -> None:
    text = fixture("windows_mp_computer_status_never_updated.json")
    product = windows.parse_defender_status(text, NOW)
    assert isinstance(product, AntivirusProduct)
    assert product.up_to_date is False and product.definitions_age_days is None


def test_defender_age_computed_from_the_date_when_not_given() -> None:
    text = '{"AntivirusEnabled": true, "AntivirusSignatureLastUpdated": "/Date(1699876800000)/"}'
    product = windows.parse_defender_status(text, NOW)
    assert isinstance(product, AntivirusProduct)
    assert product.definitions_age_days == 7.0


def test_security_center_entry_gets_defenders_signature_age() -> None:
    center = windows.parse_security_center(fixture("windows_security_center_defender.json"))
    defender = windows.parse_defender_status(fixture("windows_mp_computer_status_ps7.json"), NOW)
    facts = windows.combine_antivirus(center, defender)
    assert isinstance(facts, AntivirusFacts) and facts.complete
    (product,) = facts.products
    assert (product.name, product.source, product.enabled) == (
        "Windows Defender",
        "Security Center",
        True,
    )
    assert product.definitions_age_days == 12.0 and product.version == "1.399.1520.0"


def test_without_security_center_defender_alone_is_not_a_complete_list() -> None:
    defender = windows.parse_defender_status(fixture("windows_mp_computer_status_ps51.json"), NOW)
    facts = windows.combine_antivirus(Unavailable("Invalid namespace"), defender)
    assert isinstance(facts, AntivirusFacts)
    assert not facts.complete and facts.products == (defender,)
    assert facts.looked_for == ("Security Center: Invalid namespace",)


def test_neither_source_is_unavailable_with_both_reasons() -> None:
    facts = windows.combine_antivirus(Unavailable("a"), Unavailable("b"))
    assert facts == Unavailable("Security Center: a; Defender: b")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Date(1700467200000)/", datetime(2023, 11, 20, 8, 0, tzinfo=UTC)),
        ("2023-11-20T09:00:00.1234567+01:00", datetime(2023, 11, 20, 8, 0, 0, 123456, UTC)),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_powershell_dates(value: object, expected: datetime | None) -> None:
    assert windows.parse_powershell_date(value) == expected


# --- BitLocker ---------------------------------------------------------------------------------


def test_bitlocker_fully_encrypted_and_protected() -> None:
    volume = windows.parse_manage_bde(fixture("windows_manage_bde_encrypted.txt"))
    assert volume == VolumeEncryption(
        "C:",
        "C:",
        EncryptionState.ENCRYPTED,
        "BitLocker XTS-AES 128",
        percent_encrypted=100.0,
        detail="Fully Encrypted, Protection On",
    )


def test_bitlocker_encryption_in_progress() -> None:
    volume = windows.parse_manage_bde(fixture("windows_manage_bde_in_progress.txt"))
    assert isinstance(volume, VolumeEncryption)
    assert volume.state is EncryptionState.ENCRYPTING and volume.percent_encrypted == 42.7


def test_bitlocker_suspended() -> None:
    volume = windows.parse_manage_bde(fixture("windows_manage_bde_suspended.txt"))
    assert isinstance(volume, VolumeEncryption)
    assert volume.state is EncryptionState.SUSPENDED
    assert volume.detail == "Fully Encrypted, Protection Off (2 reboots left)"


def test_bitlocker_off() -> None:
    volume = windows.parse_manage_bde(fixture("windows_manage_bde_decrypted.txt"))
    assert isinstance(volume, VolumeEncryption)
    assert (volume.mountpoint, volume.state, volume.method) == (
        "D:",
        EncryptionState.NOT_ENCRYPTED,
        "",
    )


def test_bitlocker_access_denied_is_unavailable_with_the_error() -> None:
    assert windows.parse_manage_bde(fixture("windows_manage_bde_access_denied.txt")) == (
        Unavailable("manage-bde: An attempt to access a required resource was denied.")
    )


def test_drive_letters() -> None:
    assert windows.drive_of("d:\\data") == "D:"
    assert windows.drive_of("\\\\server\\share") is None
