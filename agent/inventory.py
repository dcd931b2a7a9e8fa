"""The machine's inventory: built from facts by section, sent whole on connect, then as diffs.

Readings that change from minute to minute (use percentages, free bytes, counters, uptime)
are left out, so a diff means the machine changed, not that time passed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Keys of readings, not of the machine's make-up; dropped at any depth.
VOLATILE_KEYS = frozenset(
    {
        "percent",
        "per_core_percent",
        "load_1m",
        "load_5m",
        "load_15m",
        "frequency_mhz",
        "available_bytes",
        "used_percent",
        "swap_used_percent",
        "free_bytes",
        "inodes_free",
        "uptime_seconds",
        "bytes_sent",
        "bytes_recv",
        "errors_in",
        "errors_out",
        "drops_in",
        "drops_out",
        "read_bytes",
        "write_bytes",
        "read_count",
        "write_count",
        "read_time_ms",
        "write_time_ms",
        "busy_time_ms",
        "cpu_percent",
        "rss_bytes",
        "memory_percent",
        "current_celsius",
        "rpm",
        "charge_percent",
        "time_left_seconds",
        "energy_now",
        "top_by_cpu",
        "top_by_memory",
        "processes",
        "offset_ms",
        "errors_last_hour",
    }
)


@dataclass(frozen=True)
class InventoryDiff:
    changed: dict[str, Any]
    removed: tuple[str, ...]


def to_json(value: Any) -> Any:
    """Dataclasses, tuples and mappings as plain JSON types, with readings dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {
            str(k).replace("\x00", ""): to_json(v)
            for k, v in value.items()
            if k not in VOLATILE_KEYS
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no infinity or NaN, and the collector refuses them
    if isinstance(value, str):
        return value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value).replace("\x00", "")


def _digest(section: Any) -> str:
    return hashlib.sha256(json.dumps(section, sort_keys=True).encode()).hexdigest()


class InventoryTracker:
    """Knows what the collector last got, so only changed sections travel."""

    def __init__(self, gather: Callable[[], Mapping[str, Any]]) -> None:
        self._gather = gather
        self._sent: dict[str, str] = {}

    def full(self) -> dict[str, Any]:
        sections = {name: to_json(value) for name, value in self._gather().items()}
        self._sent = {name: _digest(value) for name, value in sections.items()}
        return sections

    def diff(self) -> InventoryDiff | None:
        """Sections that changed since the last full() or diff(); None when nothing did."""
        sections = {name: to_json(value) for name, value in self._gather().items()}
        digests = {name: _digest(value) for name, value in sections.items()}
        changed = {n: sections[n] for n, d in digests.items() if self._sent.get(n) != d}
        removed = tuple(sorted(set(self._sent) - set(digests)))
        if not changed and not removed:
            return None
        self._sent = digests
        return InventoryDiff(changed, removed)
