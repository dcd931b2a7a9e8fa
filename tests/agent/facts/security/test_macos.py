"""macOS security parsers on recorded socketfilterfw, fdesetup, diskutil and XProtect data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.security import macos
from agent.facts.security.models import EncryptionState, FirewallFacts, VolumeEncryption

FIXTURES = Path(__file__).parents[3] / "fixtures" / "security"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize(
    ("name", "enabled", "detail"),
    [
        ("macos_socketfilterfw_enabled.txt", True, "on"),
        ("macos_socketfilterfw_disabled.txt", False, "off"),
        ("macos_socketfilterfw_block_all.txt", True, "on, blocking all incoming connections"),
    ],
)
def test_application_firewall_state(name: str, enabled: bool, detail: str) -> None:
    facts = macos.parse_socketfilterfw(fixture(name))
    assert facts == FirewallFacts("macOS Application Firewall", enabled, enabled, detail)


def test_application_firewall_without_state_number() -> None:
    facts = macos.parse_socketfilterfw("Firewall is enabled.")
    assert isinstance(facts, FirewallFacts) and facts.enabled


def test_application_firewall_unexpected_output_is_unavailable() -> None:
    assert isinstance(macos.parse_socketfilterfw("command not found"), Unavailable)


@pytest.mark.parametrize(
    ("name", "state", "percent"),
    [
        ("macos_fdesetup_on.txt", EncryptionState.ENCRYPTED, 100.0),
        ("macos_fdesetup_off.txt", EncryptionState.NOT_ENCRYPTED, None),
        ("macos_fdesetup_encrypting.txt", EncryptionState.ENCRYPTING, 34.5),
        ("macos_fdesetup_decrypting.txt", EncryptionState.DECRYPTING, 80.0),
        ("macos_fdesetup_deferred.txt", EncryptionState.PENDING, None),
    ],
)
def test_filevault_status(name: str, state: EncryptionState, percent: float | None) -> None:
    volume = macos.parse_fdesetup_status(fixture(name))
    assert isinstance(volume, VolumeEncryption)
    assert (volume.mountpoint, volume.state, volume.percent_encrypted) == ("/", state, percent)
    assert volume.system
    assert volume.method == ("" if state is EncryptionState.NOT_ENCRYPTED else "FileVault")


def test_filevault_unexpected_output_is_unavailable() -> None:
    assert isinstance(macos.parse_fdesetup_status("Error: not root"), Unavailable)


def test_diskutil_info_says_whether_a_volume_is_encrypted() -> None:
    assert macos.parse_diskutil_info(
        (FIXTURES / "macos_diskutil_info_encrypted.plist").read_bytes()
    )
    assert (
        macos.parse_diskutil_info((FIXTURES / "macos_diskutil_info_plain.plist").read_bytes())
        is False
    )


def test_diskutil_info_without_the_keys_is_unavailable() -> None:
    data = b'<?xml version="1.0"?><plist version="1.0"><dict></dict></plist>'
    assert isinstance(macos.parse_diskutil_info(data), Unavailable)
    assert isinstance(macos.parse_diskutil_info(b"garbage"), Unavailable)


def test_xprotect_version_from_its_bundle() -> None:
    assert (
        macos.parse_xprotect_plist((FIXTURES / "macos_xprotect_info.plist").read_bytes()) == "2173"
    )
    assert isinstance(macos.parse_xprotect_plist(b"not a plist"), Unavailable)


def test_xprotect_newest_install_from_the_history() -> None:
    found = macos.parse_install_history(fixture("macos_install_history.json"))
    assert found == ("2173", datetime(2023, 11, 14, 18, 41, 9, tzinfo=UTC))


def test_install_history_without_xprotect_is_unavailable() -> None:
    assert isinstance(macos.parse_install_history('{"SPInstallHistoryDataType": []}'), Unavailable)
    assert isinstance(macos.parse_install_history("{"), Unavailable)


def test_xprotect_product_age() -> None:
    updated = datetime(2023, 11, 14, 18, 41, 9, tzinfo=UTC)
    product = macos.xprotect_product("2173", updated, datetime(2023, 11, 20, 18, 41, 9, tzinfo=UTC))
    assert (product.name, product.enabled, product.definitions_age_days) == ("XProtect", True, 6.0)
