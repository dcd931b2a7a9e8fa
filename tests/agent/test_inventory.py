"""agent/inventory.py: whole on connect, then only the sections that changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.inventory import InventoryTracker, to_json


@dataclass(frozen=True)
class Disk:
    mountpoint: str
    total_bytes: int
    free_bytes: int


def test_readings_are_left_out_and_tuples_become_lists() -> None:
    value = to_json({"disks": (Disk("/", 100, 40),), "percent": 12.5})
    assert value == {"disks": [{"mountpoint": "/", "total_bytes": 100}]}


def test_full_then_diffs_of_changed_sections_only() -> None:
    sections: dict[str, Any] = {
        "machine": {"hostname": "pc-1"},
        "disks": (Disk("/", 100, 40),),
        "software": {"packages": 10},
    }
    tracker = InventoryTracker(lambda: sections)
    assert set(tracker.full()) == {"machine", "disks", "software"}

    # Only a reading moved: nothing to send.
    sections["disks"] = (Disk("/", 100, 10),)
    assert tracker.diff() is None

    sections["software"] = {"packages": 11}
    diff = tracker.diff()
    assert diff is not None
    assert diff.changed == {"software": {"packages": 11}}
    assert diff.removed == ()
    assert tracker.diff() is None

    del sections["software"]
    diff = tracker.diff()
    assert diff is not None and diff.changed == {} and diff.removed == ("software",)


def test_values_the_collector_would_refuse_are_made_storable() -> None:
    value = to_json({"name\x00": "a\x00b", "ratio": float("nan"), "big": float("inf"), "n": 3})
    assert value == {"name": "ab", "ratio": None, "big": None, "n": 3}
