"""Linux software parsers on recorded outputs (os-release, dpkg, rpm, apt, dnf, systemd, ...)."""

from __future__ import annotations

import time

from agent.facts.software import linux
from agent.facts.software.models import Package
from tests.agent.facts.software import fixture


def test_os_release_of_debian() -> None:
    release = linux.parse_os_release(fixture("os-release-debian12"))
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert (release["ID"], release["VERSION_ID"], release["VERSION_CODENAME"]) == (
        "debian",
        "12",
        "bookworm",
    )


def test_os_release_unquotes_and_unescapes_and_skips_comments() -> None:
    release = linux.parse_os_release(fixture("os-release-fedora40"))
    assert release["PRETTY_NAME"] == "Fedora Linux 40 (Workstation Edition)"
    assert release["VERSION_ID"] == "40"
    assert release["VERSION_CODENAME"] == ""
    assert release["VARIANT"] == 'Workstation "Edition"'
    assert not any(key.startswith("#") for key in release)


def test_os_release_of_ubuntu() -> None:
    release = linux.parse_os_release(fixture("os-release-ubuntu2204"))
    assert release["NAME"] == "Ubuntu" and release["ID_LIKE"] == "debian"


def test_dpkg_status_keeps_installed_packages_only() -> None:
    packages = linux.parse_dpkg_status(fixture("dpkg-status"))
    names = [(p.name, p.architecture) for p in packages]
    assert ("oldtool", "amd64") not in names  # only its config files remain
    assert ("halfdone", "all") in names  # its files are on disk
    assert ("libc6", "amd64") in names and ("libc6", "i386") in names  # multiarch pair
    bash = next(p for p in packages if p.name == "bash")
    assert bash == Package("bash", "5.2.15-2+b8", "amd64")
    assert names == sorted(names)


def test_rpm_query_reads_epochs_and_pseudo_packages() -> None:
    packages = linux.parse_rpm_query(fixture("rpm-qa.txt"))
    assert Package("openssl-libs", "1:3.2.1-2.fc40", "x86_64") in packages
    assert [p.version for p in packages if p.name == "kernel-core"] == [
        "6.8.5-301.fc40",
        "6.8.9-300.fc40",
    ]
    assert Package("gpg-pubkey", "a15b79cc-63d04c2c", "") in packages
    assert len(packages) == 6


def test_apt_simulation_recorded_on_debian_12() -> None:
    updates = linux.parse_apt_simulation(fixture("apt-dist-upgrade-debian12.txt"))
    assert len(updates) == 124  # "124 upgraded" in the same output
    assert sum(u.security for u in updates) == 69
    libssl = next(u for u in updates if u.name == "libssl3")
    assert (libssl.current_version, libssl.new_version) == ("3.0.19-1~deb12u2", "3.0.22-1~deb12u2")
    assert libssl.security and libssl.origin == "Debian-Security:12/oldstable-security"
    bash = next(u for u in updates if u.name == "bash")
    assert not bash.security and bash.origin == "Debian:12.15/oldstable"
    # Updates offered by both the point release and the security archive are security ones.
    gcrypt = next(u for u in updates if u.name == "libgcrypt20")
    assert gcrypt.security


def test_apt_simulation_counts_upgrades_not_new_dependencies() -> None:
    updates = linux.parse_apt_simulation(fixture("apt-dist-upgrade-ubuntu2204.txt"))
    assert [u.name for u in updates] == [
        "libssl3",
        "openssl",
        "tzdata",
        "linux-generic",
        "firefox:amd64",
    ]
    assert [u.name for u in updates if u.security] == [
        "libssl3",
        "openssl",
        "linux-generic",
        "firefox:amd64",  # Ubuntu Pro's jammy-apps-security
    ]


def test_apt_simulation_with_nothing_to_do() -> None:
    assert linux.parse_apt_simulation(fixture("apt-dist-upgrade-uptodate.txt")) == ()


def test_dnf_check_update_unwraps_long_names_and_stops_at_obsoletes() -> None:
    updates = linux.parse_dnf_check_update(fixture("dnf-check-update.txt"))
    assert [u.name for u in updates] == [
        "firefox",
        "kernel",
        "kernel-core",
        "openssl-libs",
        "python3-a-package-with-a-very-long-name-indeed",
        "tzdata",
    ]
    assert updates[3].new_version == "1:3.2.1-3.fc40" and updates[3].origin == "updates"
    assert updates[4].new_version == "2.1.0-1.fc40"


def test_dnf_security_advisories_name_packages_without_version() -> None:
    names = linux.parse_dnf_security(fixture("dnf-updateinfo-security.txt"))
    assert names == {"firefox", "openssl-libs", "kernel", "kernel-core"}


def test_systemctl_units() -> None:
    services = linux.parse_systemctl_units(fixture("systemctl-list-units.txt"))
    by_name = {s.name: s for s in services}
    assert "systemd-journald.socket" not in by_name and "systemd-journald" in by_name
    assert len(services) == 12
    assert by_name["ssh"].running and not by_name["ssh"].failed
    assert by_name["ssh"].state == "active/running"
    assert by_name["ssh"].description == "OpenBSD Secure Shell server"
    assert by_name["apparmor"].running  # a one-shot unit that finished is up
    assert not by_name["cups"].running and not by_name["cups"].failed
    assert by_name["fwupd-refresh"].failed and not by_name["fwupd-refresh"].running
    assert by_name["snapd.seeded"].failed  # "*" marker when the terminal is not UTF-8
    assert not by_name["nfs-server"].failed and by_name["nfs-server"].state == "inactive/dead"
    assert not by_name["unattended-upgrades"].running  # still starting
    assert by_name["NetworkManager"].running


def test_timedatectl_show() -> None:
    assert linux.parse_timedatectl(fixture("timedatectl-show.txt")) == (True, True)
    assert linux.parse_timedatectl(fixture("timedatectl-show-unsynced.txt")) == (False, False)
    assert linux.parse_timedatectl("Timezone=UTC\n") == (None, None)


def test_chrony_tracking_synchronised() -> None:
    tracked = linux.parse_chrony_tracking(fixture("chronyc-tracking.csv"))
    assert tracked is not None
    assert tracked.synchronized is True and tracked.server == "162.159.200.123"
    assert tracked.offset_ms is not None and abs(tracked.offset_ms - 0.012345) < 1e-9


def test_chrony_tracking_drifting_clock_reports_the_offset() -> None:
    tracked = linux.parse_chrony_tracking(fixture("chronyc-tracking-drifting.csv"))
    assert tracked is not None and tracked.synchronized is True
    assert tracked.offset_ms is not None and abs(tracked.offset_ms - 2345.678901) < 1e-6


def test_chrony_tracking_without_a_source_is_not_synchronised() -> None:
    tracked = linux.parse_chrony_tracking(fixture("chronyc-tracking-unsynced.csv"))
    assert tracked is not None
    assert tracked.synchronized is False and tracked.offset_ms is None


def test_chrony_tracking_garbage_is_none() -> None:
    assert linux.parse_chrony_tracking("") is None
    assert linux.parse_chrony_tracking("506 Cannot talk to daemon\n") is None
    assert linux.parse_chrony_tracking(",".join(["x"] * 14)) is None


def test_journal_timestamps() -> None:
    times = linux.parse_journal_timestamps(fixture("journalctl-err.json"))
    assert times == (1763969400.123456, 1763970000.000001, 1763970600.5, 1763972400.0)


def test_syslog_error_lines_with_rfc3339_stamps() -> None:
    now = 1763971200.0  # 2025-11-24T08:00:00Z
    times = linux.parse_syslog_error_times(fixture("syslog-rfc3339.txt"), now)
    # usb "error -71", "JS ERROR", "segfault"; not "Failed", nor "errorless".
    assert times == (1763968212.000001, 1763969442.0, 1763970630.0)


def test_syslog_error_lines_with_traditional_stamps_guess_the_year() -> None:
    now = time.mktime(time.strptime("2025 Nov 24 08:00:00", "%Y %b %d %H:%M:%S"))
    times = linux.parse_syslog_error_times(fixture("syslog-traditional.txt"), now)
    assert len(times) == 4
    assert times[0] == time.mktime(time.strptime("2025 Nov 24 06:10:00", "%Y %b %d %H:%M:%S"))
    # "Dec 31" would be in the future this year: it is last year's.
    assert times[-1] == time.mktime(time.strptime("2024 Dec 31 23:59:59", "%Y %b %d %H:%M:%S"))
    assert [t for t in times if t >= now - 3600] == list(times[1:3])
