"""LiveFacts on this machine agrees with the kernel's own numbers (/proc, statvfs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.facts.live import LiveFacts
from agent.facts.models import CpuFacts, DisksFacts, InterfacesFacts, MemoryFacts, UptimeFacts

linux_only = pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc")


@linux_only
def test_memory_total_is_meminfo_memtotal() -> None:
    facts = LiveFacts().memory()
    assert isinstance(facts, MemoryFacts)
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    assert facts.total_bytes == int(meminfo["MemTotal"].split()[0]) * 1024
    assert facts.swap_total_bytes == int(meminfo["SwapTotal"].split()[0]) * 1024


def test_filesystem_sizes_are_statvfs(tmp_path: Path) -> None:
    facts = LiveFacts().disks([str(tmp_path)])
    assert isinstance(facts, DisksFacts)
    (fs,) = facts.filesystems
    vfs = os.statvfs(tmp_path)
    assert fs.total_bytes == vfs.f_blocks * vfs.f_frsize
    if vfs.f_files:
        assert fs.inodes_total == vfs.f_files
        assert fs.inodes_used_percent is not None and 0 <= fs.inodes_used_percent <= 100


@linux_only
def test_cpu_matches_proc() -> None:
    facts = LiveFacts().cpu()
    assert isinstance(facts, CpuFacts)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert facts.logical_cores == os.cpu_count()
    assert facts.model and facts.model in cpuinfo
    assert len(facts.per_core_percent) == facts.logical_cores
    assert all(0.0 <= p <= 100.0 for p in facts.per_core_percent)
    load_1m = float(Path("/proc/loadavg").read_text().split()[0])
    assert abs(facts.load_1m - load_1m) < 2.0


@linux_only
def test_uptime_matches_proc_uptime() -> None:
    facts = LiveFacts().uptime()
    assert isinstance(facts, UptimeFacts)
    proc_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert abs(facts.uptime_seconds - proc_uptime) < 5.0


@linux_only
def test_interfaces_match_proc_net_dev() -> None:
    facts = LiveFacts().interfaces()
    assert isinstance(facts, InterfacesFacts)
    listed = {
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    }
    assert {i.name for i in facts.interfaces} >= listed
    lo = next(i for i in facts.interfaces if i.name == "lo")
    assert lo.is_up and "127.0.0.1" in lo.addresses
