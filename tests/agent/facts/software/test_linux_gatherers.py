"""Linux software gatherers on files made for the test: flag files, /boot, dpkg, syslog, cache."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest

from agent.facts.cache import MtimeCache, signature
from agent.facts.models import Unavailable
from agent.facts.software import linux
from agent.facts.software.models import LogErrorsFacts, PackagesFacts, RebootFacts, UpdatesFacts
from tests.agent.facts.software import FIXTURES

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux", reason="the Linux gatherers read Linux paths"
)


def test_reboot_flag_with_packages_and_age(tmp_path: Path) -> None:
    flag = tmp_path / "reboot-required"
    flag.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-21-amd64\nlibc6\nlibc6\n")
    os.utime(flag, (1_000_000.0, 1_000_000.0))
    facts = linux.reboot_required(str(flag), str(tmp_path / "boot"), now=1_000_000.0 + 7200)
    assert isinstance(facts, RebootFacts)
    assert facts.required and facts.reasons == (f"{flag} exists",)
    assert facts.packages == ("linux-image-6.1.0-21-amd64", "libc6")
    assert facts.pending_seconds == 7200.0


def test_no_flag_and_no_kernel_in_boot_is_no_reboot(tmp_path: Path) -> None:
    facts = linux.reboot_required(str(tmp_path / "reboot-required"), str(tmp_path / "boot"))
    assert isinstance(facts, RebootFacts)
    assert not facts.required


def test_a_newer_kernel_than_the_running_one_asks_for_a_restart(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    running = boot / f"vmlinuz-{platform.release()}"
    newer = boot / "vmlinuz-99.0.0-1-test"
    running.write_bytes(b"old")
    newer.write_bytes(b"new")
    os.utime(running, (1_000.0, 1_000.0))
    os.utime(newer, (5_000.0, 5_000.0))
    facts = linux.reboot_required(str(tmp_path / "no-flag"), str(boot), now=5_000.0 + 86400)
    assert isinstance(facts, RebootFacts)
    assert facts.required and facts.pending_seconds == 86400.0
    assert facts.reasons == (
        f"kernel 99.0.0-1-test is installed but {platform.release()} is running",
    )
    os.utime(newer, (500.0, 500.0))  # an older kernel kept as fallback
    again = linux.reboot_required(str(tmp_path / "no-flag"), str(boot))
    assert isinstance(again, RebootFacts) and not again.required


def test_kernels_in_boot_are_ignored_when_the_running_one_is_not_there(tmp_path: Path) -> None:
    # A container runs its host's kernel: the image's own kernels say nothing about it.
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz-99.0.0-1-test").write_bytes(b"x")
    facts = linux.reboot_required(str(tmp_path / "no-flag"), str(boot))
    assert isinstance(facts, RebootFacts) and not facts.required


def test_dpkg_packages_are_cached_until_the_status_file_changes(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text((FIXTURES / "dpkg-status").read_text())
    first = linux.packages(str(status))
    assert isinstance(first, PackagesFacts) and first.manager == "dpkg"
    assert linux.packages(str(status)) is first  # same mtime: not read again
    status.write_text(status.read_text() + "\nPackage: newone\nStatus: install ok installed\n")
    second = linux.packages(str(status))
    assert isinstance(second, PackagesFacts)
    assert len(second.packages) == len(first.packages) + 1


def test_services_without_systemd_say_so_without_running_systemctl(tmp_path: Path) -> None:
    found = linux.services(str(tmp_path / "no-systemd"))
    assert isinstance(found, Unavailable)
    assert found.reason.startswith("systemd is not running: ")


def test_syslog_errors_counted_in_the_window_and_cached(tmp_path: Path) -> None:
    syslog = tmp_path / "syslog"
    syslog.write_text((FIXTURES / "syslog-rfc3339.txt").read_text())
    counter = linux.LogErrorCounter((str(tmp_path / "journal"),), (str(syslog),))
    now = 1763971200.0  # 08:00Z: the window starts at 07:00Z
    found = counter.count(now)
    assert isinstance(found, LogErrorsFacts)
    assert (found.errors_last_hour, found.window_seconds) == (3, 3600.0)
    assert found.source == f"{syslog} (keyword match)"
    # The file unchanged (same size and mtime): the kept times are reused, and age out.
    stat = syslog.stat()
    syslog.write_text(syslog.read_text().replace("segfault", "seg_ault"))
    os.utime(syslog, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    later = counter.count(now + 1800)  # 08:30Z: 07:30:42's JS ERROR and 07:50:30's segfault
    assert isinstance(later, LogErrorsFacts) and later.errors_last_hour == 2
    os.utime(syslog)  # now it changed: read again, and the segfault line is gone
    reread = counter.count(now + 1800)
    assert isinstance(reread, LogErrorsFacts) and reread.errors_last_hour == 1


def test_no_log_at_all_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    counter = linux.LogErrorCounter((str(tmp_path / "journal"),), (str(tmp_path / "syslog"),))
    found = counter.count()
    assert isinstance(found, Unavailable)
    assert "journald keeps no journal files" in found.reason


def test_updates_are_saved_in_the_state_dir_and_reused(tmp_path: Path) -> None:
    calls = []

    def compute() -> UpdatesFacts:
        calls.append(1)
        return UpdatesFacts(
            "apt",
            linux.parse_apt_simulation((FIXTURES / "apt-dist-upgrade-ubuntu2204.txt").read_text()),
        )

    key = ("apt", signature([str(tmp_path)]))
    first = linux._persisted(tmp_path, key, compute)
    again = linux._persisted(tmp_path, key, compute)
    assert calls == [1]
    assert again == first
    other = ("apt", signature([str(tmp_path / "elsewhere")]))
    linux._persisted(tmp_path, other, compute)
    assert calls == [1, 1]


def test_mtime_cache_recomputes_on_a_new_key_or_when_too_old() -> None:
    now = [0.0]
    cache = MtimeCache[int](max_age_s=10, clock=lambda: now[0])
    computed = iter(range(100))
    assert cache.get("a", lambda: next(computed)) == 0
    assert cache.get("a", lambda: next(computed)) == 0
    assert cache.get("b", lambda: next(computed)) == 1
    now[0] = 11.0
    assert cache.get("b", lambda: next(computed)) == 2


def test_signature_of_missing_and_present_paths(tmp_path: Path) -> None:
    present = tmp_path / "f"
    present.write_text("abc")
    sig = signature([str(present), str(tmp_path / "missing")])
    assert sig[0][0] == str(present) and sig[0][2] == 3
    assert sig[1] == (str(tmp_path / "missing"), -1, -1)


def test_lists_age_is_that_of_the_newest_stamp(tmp_path: Path) -> None:
    old, new = tmp_path / "lists", tmp_path / "update-success-stamp"
    old.mkdir()
    new.write_text("")
    now = time.time()
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    os.utime(new, (now - 2 * 86400, now - 2 * 86400))
    facts = UpdatesFacts("apt", ())
    aged = linux._with_lists_age(facts, [str(tmp_path / "missing"), str(old), str(new)])
    assert isinstance(aged, UpdatesFacts) and aged.lists_age_seconds is not None
    assert 2 * 86400 <= aged.lists_age_seconds < 3 * 86400
    assert linux._with_lists_age(facts, [str(tmp_path / "missing")]) == facts
    assert linux._with_lists_age(Unavailable("x"), [str(new)]) == Unavailable("x")


def test_the_kernel_clock_state_is_read_without_a_process() -> None:
    found = linux.kernel_clock_synchronized()
    assert isinstance(found, bool) or (isinstance(found, Unavailable) and found.reason)
