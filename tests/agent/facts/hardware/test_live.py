"""LiveHardware on this very machine, and psutil's readings turned into facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from agent.facts.hardware.history import HISTORY_FILE
from agent.facts.hardware.live import disk_io_from_psutil, sensors_from_psutil
from agent.facts.hardware.models import (
    BatteriesFacts,
    DiskIoFacts,
    DiskUsageHistoryFacts,
    SensorsFacts,
    SmartFacts,
    TemperatureReading,
)
from agent.facts.live import LiveFacts
from agent.facts.models import DisksFacts, Unavailable


class shwtemp(NamedTuple):
    label: str
    current: float
    high: float | None
    critical: float | None


class sfan(NamedTuple):
    label: str
    current: int


class sdiskio(NamedTuple):
    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    read_time: int
    write_time: int
    read_merged_count: int
    write_merged_count: int
    busy_time: int


@pytest.fixture
def live(tmp_path: Path) -> LiveFacts:
    return LiveFacts(state_dir=tmp_path)


def proc_disk_names() -> set[str]:
    with open("/proc/diskstats", encoding="utf-8") as stats:
        return {line.split()[2] for line in stats if line.strip()}


def test_disk_io_matches_proc_diskstats(live: LiveFacts) -> None:
    facts = live.disk_io()
    if isinstance(facts, Unavailable):
        assert facts.reason
        return
    assert isinstance(facts, DiskIoFacts)
    names = [disk.name for disk in facts.disks]
    assert names and len(names) == len(set(names))
    if Path("/proc/diskstats").exists():
        assert set(names) <= proc_disk_names()
    assert not any(name.startswith("loop") for name in names)
    for disk in facts.disks:
        assert min(disk.read_bytes, disk.write_bytes, disk.read_count, disk.write_count) >= 0


def test_smart_is_read_or_unavailable_with_a_reason(live: LiveFacts) -> None:
    facts = live.smart()
    if isinstance(facts, Unavailable):
        assert facts.reason
    else:
        assert isinstance(facts, SmartFacts)
    assert live.smart() is facts  # cached: a second ask spawns nothing


def test_batteries_are_read_or_unavailable_with_a_reason(live: LiveFacts) -> None:
    facts = live.batteries()
    if isinstance(facts, Unavailable):
        assert facts.reason
    else:
        assert isinstance(facts, BatteriesFacts) and facts.batteries
        for battery in facts.batteries:
            assert battery.percent is None or 0 <= battery.percent <= 100


def test_sensors_are_read_or_unavailable_with_a_reason(live: LiveFacts) -> None:
    facts = live.sensors()
    if isinstance(facts, Unavailable):
        assert facts.reason
        return
    assert isinstance(facts, SensorsFacts)
    for reading in facts.temperatures:
        assert -40 < reading.celsius < 125


def test_disk_usage_history_records_the_real_filesystems(live: LiveFacts, tmp_path: Path) -> None:
    disks = live.disks([str(tmp_path)])
    assert isinstance(disks, DisksFacts)
    facts = live.disk_usage_history(disks)
    assert isinstance(facts, DiskUsageHistoryFacts)
    (fs,) = facts.filesystems
    (real,) = disks.filesystems
    assert fs.mountpoint == real.mountpoint
    (sample,) = fs.samples
    assert sample.total_bytes == real.total_bytes
    assert sample.used_bytes == real.total_bytes - real.free_bytes
    assert (tmp_path / HISTORY_FILE).exists()


def test_the_history_is_kept_per_source_and_reloaded_from_the_state_dir(tmp_path: Path) -> None:
    first = LiveFacts(state_dir=tmp_path)
    disks = first.disks([str(tmp_path)])
    assert isinstance(disks, DisksFacts)
    first.disk_usage_history(disks)
    again = LiveFacts(state_dir=tmp_path)
    facts = again.disk_usage_history(disks)
    assert isinstance(facts, DiskUsageHistoryFacts)
    # The second sample came too soon to be kept, but both are handed to the check.
    assert len(facts.filesystems[0].samples) == 2


def test_unreadable_paths_are_passed_on(live: LiveFacts, tmp_path: Path) -> None:
    disks = live.disks([str(tmp_path / "missing")])
    assert isinstance(disks, DisksFacts)
    facts = live.disk_usage_history(disks)
    assert isinstance(facts, DiskUsageHistoryFacts)
    assert facts.filesystems == () and len(facts.errors) == 1


def test_the_inventory_is_json_and_bounded(live: LiveFacts) -> None:
    inventory = live.hardware_inventory()
    assert set(inventory) == {"disks", "smart", "batteries", "sensors"}
    for section in inventory.values():
        if isinstance(section, dict) and "unavailable" in section:
            assert section["unavailable"]
    assert len(json.dumps(inventory)) < 100_000
    assert inventory == live.hardware_inventory()  # nothing volatile: unchanged when re-read


def test_psutil_temperatures_become_readings_without_bogus_marks() -> None:
    facts = sensors_from_psutil(
        {
            "coretemp": [
                shwtemp("Package id 0", 54.0, 80.0, 100.0),
                shwtemp("Core 0", 51.0, None, None),
            ],
            "acpitz": [shwtemp("", 27.8, 0.0, 119.0)],
            "broken": [
                shwtemp("temp1", -273.0, None, None),
                shwtemp("temp2", 0.0, None, None),
                shwtemp("AUXTIN0", 127.0, None, None),
            ],
        },
        {"thinkpad": [sfan("", 2890)]},
    )
    assert facts.temperatures == (
        TemperatureReading("coretemp", "Package id 0", 54.0, 80.0, 100.0),
        TemperatureReading("coretemp", "Core 0", 51.0),
        TemperatureReading("acpitz", "", 27.8, None, 119.0),
    )
    assert facts.temperatures[2].name == "acpitz"
    assert [(fan.name, fan.rpm) for fan in facts.fans] == [("thinkpad", 2890)]


def test_psutil_disk_counters_skip_pseudo_disks() -> None:
    io = sdiskio(10, 20, 4096, 8192, 5, 6, 0, 0, 7)
    facts = disk_io_from_psutil({"sda": io, "loop0": io, "ram0": io, "nvme0n1": io})
    assert [disk.name for disk in facts.disks] == ["nvme0n1", "sda"]
    assert facts.disks[0].busy_time_ms == 7
