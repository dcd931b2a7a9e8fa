"""macOS software parsers on recorded outputs of system_profiler, softwareupdated, launchctl."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.facts.software import macos
from agent.facts.software.models import Package
from tests.agent.facts.software import FIXTURES, fixture


def test_applications_deduplicated_and_sorted() -> None:
    apps = macos.parse_system_profiler_apps(fixture("system_profiler-applications.json"))
    assert [a.name for a in apps] == ["Legacy Tool", "Microsoft Teams", "Safari", "zoom.us"]
    assert apps[0] == Package("Legacy Tool", "", "arch_i64")
    assert apps[2].version == "17.5"


def test_softwareupdate_record_lists_updates_and_their_age() -> None:
    now = datetime(2025, 11, 24, 8, 0, tzinfo=UTC).timestamp()
    data = (FIXTURES / "softwareupdate.plist").read_bytes()
    facts = macos.parse_softwareupdate_plist(data, now)
    assert facts is not None
    assert [u.name for u in facts.updates] == ["macOS Sonoma 14.5", "Safari"]
    assert facts.updates[0].new_version == "14.5"
    assert facts.security is None  # macOS does not tell which are security fixes
    assert facts.lists_age_seconds == 7200.0


def test_softwareupdate_without_a_recorded_check_is_none() -> None:
    data = (FIXTURES / "softwareupdate-never-checked.plist").read_bytes()
    assert macos.parse_softwareupdate_plist(data, 0.0) is None


def test_launchctl_list() -> None:
    services = macos.parse_launchctl_list(fixture("launchctl-list.txt"))
    by_name = {s.name: s for s in services}
    assert len(services) == 4
    assert by_name["com.apple.Finder"].running
    assert not by_name["com.example.backup-agent"].running
    assert by_name["com.example.backup-agent"].state == "not running (last exit 78)"
    assert not any(s.failed for s in services)


def test_network_time_setting() -> None:
    assert macos.parse_network_time(fixture("systemsetup-networktime-on.txt")) is True
    assert macos.parse_network_time(fixture("systemsetup-networktime-off.txt")) is False
    assert macos.parse_network_time(fixture("systemsetup-not-admin.txt")) is None
