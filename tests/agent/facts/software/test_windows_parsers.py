"""Windows software parsers on recorded outputs of reg, PowerShell, w32tm and wevtutil."""

from __future__ import annotations

import json

import pytest

from agent.facts.software import windows
from agent.facts.software.models import Package
from tests.agent.facts.software import fixture


def test_reg_query_keys_and_values() -> None:
    keys = windows.parse_reg_query(fixture("reg-uninstall-64.txt"))
    root = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
    assert keys[root] == {"(Default)": ("REG_SZ", "")}
    assert keys[rf"{root}\AddressBook"] == {}
    zip7 = keys[rf"{root}\7-Zip"]
    assert zip7["DisplayName"] == ("REG_SZ", "7-Zip 23.01 (x64)")
    assert zip7["NoModify"] == ("REG_DWORD", "0x1")
    assert zip7["InstallLocation"] == ("REG_SZ", "C:\\Program Files\\7-Zip\\")


def test_uninstall_entries_leave_out_components_updates_and_nameless_keys() -> None:
    packages = windows.parse_uninstall_entries(fixture("reg-uninstall-64.txt"))
    assert packages == (
        Package("7-Zip 23.01 (x64)", "23.01"),
        Package(
            "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135", "14.38.33135.0"
        ),
        Package("Mozilla Firefox (x64 en-US)", "126.0"),
        Package("Zoom Workplace", "6.0.11 (39959)"),
    )


def test_wow64_uninstall_entries() -> None:
    packages = windows.parse_uninstall_entries(fixture("reg-uninstall-32.txt"))
    assert [p.name for p in packages] == ["7-Zip 23.01 (x64)", "Adobe Acrobat Reader (32-bit)"]


def test_pending_file_renames_list_the_source_files() -> None:
    renames = windows.parse_pending_file_renames(fixture("reg-pending-file-renames.txt"))
    assert renames == (
        "C:\\Windows\\Temp\\old-driver.sys",
        "C:\\Program Files\\Vendor\\app.dll.new",
    )


def test_reboot_pending_from_each_documented_key() -> None:
    facts = windows.reboot_from_registry(
        fixture("reg-cbs-reboot-pending.txt"),
        fixture("reg-wu-reboot-required.txt"),
        fixture("reg-pending-file-renames.txt"),
    )
    assert facts.required
    assert len(facts.reasons) == 3
    assert "RebootPending" in facts.reasons[0]
    assert "RebootRequired" in facts.reasons[1]
    assert facts.reasons[2].startswith("2 file(s) are waiting")
    assert facts.pending_seconds is None  # Windows does not say since when


def test_no_reboot_when_no_key_exists() -> None:
    facts = windows.reboot_from_registry(None, None, None)
    assert not facts.required and facts.reasons == ()


def test_an_empty_rename_list_is_no_reason_to_restart() -> None:
    empty = (
        "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\r\n"
        "    PendingFileRenameOperations    REG_MULTI_SZ    \r\n"
    )
    facts = windows.reboot_from_registry(None, fixture("reg-wu-reboot-required.txt"), empty)
    assert facts.required and len(facts.reasons) == 1


def test_windows_updates_mark_rated_and_security_classified_ones() -> None:
    updates = windows.parse_windows_updates(fixture("windows-updates.json"))
    assert len(updates) == 4
    assert [u.security for u in updates] == [True, False, True, False]
    assert updates[0].new_version == "KB5037771"
    assert updates[0].origin == "Security Updates, Windows 11"
    assert updates[3].new_version == ""  # a driver has no KB number


def test_windows_updates_single_object_and_empty_list() -> None:
    (single,) = windows.parse_windows_updates(fixture("windows-updates-single.json"))
    assert single.new_version == "KB890830" and not single.security
    assert single.origin == "Update Rollups"
    assert windows.parse_windows_updates(fixture("windows-updates-none.json")) == ()
    assert windows.parse_windows_updates("") == ()
    assert windows.parse_windows_updates("[null]") == ()  # PowerShell's @($null)


def test_windows_updates_refuse_broken_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        windows.parse_windows_updates("[{")


def test_w32tm_synchronised_with_offset() -> None:
    facts = windows.parse_w32tm_status(fixture("w32tm-status-verbose.txt"))
    assert facts is not None
    assert facts.synchronized is True and facts.server == "time.windows.com"
    assert facts.offset_ms is not None and abs(facts.offset_ms - 0.5362) < 1e-9


def test_w32tm_on_the_local_clock_is_not_synchronised() -> None:
    facts = windows.parse_w32tm_status(fixture("w32tm-status-unsynced.txt"))
    assert facts is not None
    assert facts.synchronized is False and facts.offset_ms is None and facts.server == ""


def test_w32tm_in_another_language_is_not_guessed() -> None:
    assert windows.parse_w32tm_status(fixture("w32tm-status-french.txt")) is None


def test_wevtutil_events_are_counted() -> None:
    assert windows.count_wevtutil_events(fixture("wevtutil-system-errors.txt")) == 3
    assert windows.count_wevtutil_events("") == 0


@pytest.mark.parametrize(
    ("release", "version", "edition", "name"),
    [
        ("10", "10.0.22631", "Professional", "Windows 11 Pro"),
        ("11", "10.0.26100", "Enterprise", "Windows 11 Enterprise"),
        ("10", "10.0.19045", "Core", "Windows 10 Home"),
        ("10", "", "", "Windows 10"),
    ],
)
def test_windows_name(release: str, version: str, edition: str, name: str) -> None:
    assert windows.windows_name(release, version, edition) == name
