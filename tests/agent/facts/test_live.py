"""LiveFacts on this very machine: real psutil, and network traffic to loopback only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.facts.live import LiveFacts
from agent.facts.models import (
    CpuFacts,
    DisksFacts,
    DnsFacts,
    GatewayFacts,
    InterfacesFacts,
    MemoryFacts,
    UptimeFacts,
)


@pytest.fixture(scope="module")
def live() -> LiveFacts:
    return LiveFacts()


def test_cpu(live: LiveFacts) -> None:
    cpu = live.cpu()
    assert isinstance(cpu, CpuFacts)
    assert cpu.logical_cores >= 1
    assert cpu.physical_cores is None or 1 <= cpu.physical_cores <= cpu.logical_cores
    assert 0.0 <= cpu.percent <= 100.0
    assert min(cpu.load_1m, cpu.load_5m, cpu.load_15m) >= 0.0


def test_memory(live: LiveFacts) -> None:
    memory = live.memory()
    assert isinstance(memory, MemoryFacts)
    assert 0 < memory.available_bytes <= memory.total_bytes
    assert 0.0 <= memory.used_percent <= 100.0
    assert memory.swap_total_bytes >= 0
    assert 0.0 <= memory.swap_used_percent <= 100.0


def test_disks_finds_the_filesystem_holding_a_path(live: LiveFacts, tmp_path: Path) -> None:
    disks = live.disks([str(tmp_path)])
    assert isinstance(disks, DisksFacts)
    assert disks.errors == ()
    (fs,) = disks.filesystems
    assert fs.path == str(tmp_path)
    assert fs.mountpoint and os.path.realpath(tmp_path).startswith(fs.mountpoint)
    assert fs.device and fs.fstype
    assert 0 <= fs.free_bytes <= fs.total_bytes and fs.total_bytes > 0
    assert 0.0 <= fs.used_percent <= 100.0


def test_disks_reports_an_unreadable_path_and_keeps_the_rest(
    live: LiveFacts, tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    disks = live.disks([str(missing), str(tmp_path)])
    assert isinstance(disks, DisksFacts)
    assert [fs.path for fs in disks.filesystems] == [str(tmp_path)]
    (error,) = disks.errors
    assert error.startswith(f"{missing}: ")


def test_disks_without_paths_lists_sized_writable_filesystems(live: LiveFacts) -> None:
    disks = live.disks([])
    assert isinstance(disks, DisksFacts)
    mountpoints = [fs.mountpoint for fs in disks.filesystems]
    assert len(mountpoints) == len(set(mountpoints))
    for fs in disks.filesystems:
        assert fs.path == fs.mountpoint
        assert 0 <= fs.free_bytes <= fs.total_bytes


def test_uptime(live: LiveFacts) -> None:
    uptime = live.uptime()
    assert isinstance(uptime, UptimeFacts)
    assert 0 < uptime.boot_time < time.time()
    assert uptime.uptime_seconds > 0


def test_interfaces_include_an_up_loopback(live: LiveFacts) -> None:
    interfaces = live.interfaces()
    assert isinstance(interfaces, InterfacesFacts)
    loopback = [i for i in interfaces.interfaces if "127.0.0.1" in i.addresses]
    assert loopback and loopback[0].is_up and loopback[0].mtu > 0


def test_dns_resolves_localhost(live: LiveFacts) -> None:
    dns = live.dns(["localhost"], 2.0)
    assert isinstance(dns, DnsFacts)
    (lookup,) = dns.lookups
    assert lookup.error is None
    assert {"127.0.0.1", "::1"} & set(lookup.addresses)
    assert lookup.elapsed_ms >= 0.0


def test_gateway_probes_a_configured_loopback_target(live: LiveFacts) -> None:
    gateway = live.gateway("127.0.0.1", 2, 1.0)
    assert isinstance(gateway, GatewayFacts)
    assert gateway.target == "127.0.0.1"
    assert gateway.method == "icmp" or gateway.method.startswith("tcp:")
    assert (gateway.sent, gateway.received) == (2, 2)
    assert len(gateway.rtt_ms) == 2 and all(rtt >= 0 for rtt in gateway.rtt_ms)
