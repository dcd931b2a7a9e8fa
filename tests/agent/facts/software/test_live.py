"""LiveSoftware on this very machine: plausible values, or Unavailable with a reason.

This machine is a container: systemd is not PID 1 and journald keeps no files, so services
and the log count must say so rather than pass; what can be read is cross-checked against
the same source read another way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.facts.live import LiveFacts
from agent.facts.models import Unavailable
from agent.facts.software.linux import parse_os_release
from agent.facts.software.models import (
    LogErrorsFacts,
    OsFacts,
    PackagesFacts,
    ProcessesFacts,
    RebootFacts,
    ServicesFacts,
    TimeSyncFacts,
    UpdatesFacts,
)
from agent.facts.software.processes import ProcessSampler

LINUX = pytest.mark.skipif(sys.platform != "linux", reason="Linux is what runs here for real")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> LiveFacts:
    return LiveFacts(state_dir=tmp_path_factory.mktemp("state"))


@LINUX
def test_operating_system_matches_os_release_and_uname(live: LiveFacts) -> None:
    found = live.operating_system()
    assert isinstance(found, OsFacts)
    release = parse_os_release(Path("/etc/os-release").read_text())
    assert found.system == "Linux"
    assert found.name == release["PRETTY_NAME"]
    assert found.version == release.get("VERSION_ID", "")
    assert found.kernel == os.uname().release
    assert found.architecture == os.uname().machine


@LINUX
def test_reboot_required_agrees_with_the_flag_file(live: LiveFacts) -> None:
    found = live.reboot_required()
    assert isinstance(found, RebootFacts)
    if os.path.exists("/var/run/reboot-required"):
        assert found.required and found.pending_seconds is not None
    else:
        assert found.required == bool(found.reasons)


@LINUX
def test_packages_match_dpkg_query(live: LiveFacts) -> None:
    found = live.packages()
    if not os.path.exists("/var/lib/dpkg/status"):
        assert isinstance(found, PackagesFacts | Unavailable)
        return
    assert isinstance(found, PackagesFacts) and found.manager == "dpkg"
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    expected = {
        tuple(line.split("\t")[:3]) for line in listed if line.split("\t")[3].startswith("i")
    }
    assert {(p.name, p.version, p.architecture) for p in found.packages} == expected


@LINUX
def test_pending_updates_come_from_local_state(live: LiveFacts) -> None:
    found = live.pending_updates()
    if isinstance(found, Unavailable):
        assert found.reason
        return
    assert isinstance(found, UpdatesFacts)
    assert found.manager in ("apt", "dnf")
    assert 0 <= (found.security or 0) <= found.pending
    assert found.lists_age_seconds is None or found.lists_age_seconds >= 0
    assert all(u.name and u.new_version for u in found.updates)
    # Asked again with nothing changed: the cached answer, not another simulation.
    again = live.pending_updates()
    assert isinstance(again, UpdatesFacts) and again.updates is found.updates


@LINUX
def test_services_report_systemd_or_why_not(live: LiveFacts) -> None:
    found = live.services()
    if os.path.isdir("/run/systemd/system"):
        assert isinstance(found, ServicesFacts) and found.services
    else:
        assert isinstance(found, Unavailable)
        assert found.reason.startswith("systemd is not running: ")


@LINUX
def test_time_sync_reports_a_state(live: LiveFacts) -> None:
    found = live.time_sync()
    if isinstance(found, Unavailable):
        assert found.reason
        return
    assert isinstance(found, TimeSyncFacts)
    assert found.source in ("chrony", "kernel", "timedatectl")
    assert found.synchronized is not None or found.ntp_enabled is not None
    assert found.offset_ms is None or found.offset_ms >= 0


@LINUX
def test_log_errors_count_or_say_why_not(live: LiveFacts) -> None:
    found = live.log_errors()
    if isinstance(found, Unavailable):
        assert found.reason
        return
    assert isinstance(found, LogErrorsFacts)
    assert found.errors_last_hour >= 0 and found.window_seconds == 3600.0


def test_top_processes_measure_cpu_from_the_second_sample() -> None:
    source = LiveFacts()
    first = source.top_processes()
    assert isinstance(first, ProcessesFacts)
    assert first.cpu_window_seconds is None and first.top_by_cpu == ()
    assert 0 < len(first.top_by_memory) <= 10
    assert first.process_count >= 1 and first.logical_cores == psutil.cpu_count()
    assert first.memory_total_bytes == psutil.virtual_memory().total
    rss = [p.rss_bytes for p in first.top_by_memory]
    assert rss == sorted(rss, reverse=True)
    # Straight away again: too short an interval to measure CPU in clock ticks.
    again = source.top_processes()
    assert isinstance(again, ProcessesFacts) and again.cpu_window_seconds is None


def test_a_spinning_process_shows_up_as_busy_and_can_be_excluded() -> None:
    sampler = ProcessSampler(min_window_s=0.0)
    assert isinstance(sampler.sample(), ProcessesFacts)
    # A child that spins until it has used CPU time, then idles until killed.
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    spinner = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(60)"])
    try:
        child = psutil.Process(spinner.pid)
        while sum(child.cpu_times()[:2]) < 0.3:
            time.sleep(0.05)
        second = sampler.sample()
        assert isinstance(second, ProcessesFacts)
        assert second.cpu_window_seconds is not None and second.cpu_window_seconds > 0
        busy = {p.pid: p for p in second.top_by_cpu}
        assert spinner.pid in busy
        cpu = busy[spinner.pid].cpu_percent
        assert cpu is not None and 0 < cpu <= 100.0 * second.logical_cores
        assert busy[spinner.pid].user  # the owner's name is read for the top ones
        excluded = sampler.sample(exclude=[busy[spinner.pid].name.upper()])
        assert isinstance(excluded, ProcessesFacts)
        assert spinner.pid not in {p.pid for p in excluded.top_by_memory + excluded.top_by_cpu}
    finally:
        spinner.kill()
        spinner.wait()


def test_software_inventory_is_json_and_bounded(live: LiveFacts) -> None:
    inventory = live.software_inventory()
    assert set(inventory) == {
        "os",
        "reboot",
        "packages",
        "updates",
        "services",
        "time_sync",
        "processes",
    }
    json.dumps(inventory)
    for section in inventory.values():
        assert isinstance(section, dict)
        if "unavailable" in section:
            assert section["unavailable"]
    assert "pending_seconds" not in inventory["reboot"]
    if "unavailable" not in inventory["processes"]:
        assert len(inventory["processes"]["top_by_memory"]) <= 10
