"""LiveHardware: hardware facts read from this machine (psutil, smartctl, the OS's battery data)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psutil

from agent.facts.cache import TtlCache
from agent.facts.hardware import smart
from agent.facts.hardware.history import HISTORY_FILE, DiskUsageHistory
from agent.facts.hardware.models import (
    BatteriesFacts,
    DiskIo,
    DiskIoFacts,
    DiskUsageHistoryFacts,
    FanReading,
    FilesystemHistory,
    SensorsFacts,
    SmartFacts,
    TemperatureReading,
)
from agent.facts.models import DisksFacts, Unavailable

# Only this platform's module: the others' code would sit in memory unused.
if sys.platform == "win32":
    from agent.facts.hardware import windows
elif sys.platform == "darwin":
    from agent.facts.hardware import macos
else:
    from agent.facts.hardware import linux

# psutil raises its own errors besides OSError; RuntimeError covers "not supported here".
_GATHER_ERRORS = (OSError, psutil.Error, RuntimeError)
BATTERY_TTL_S = 300.0
"""Reading the battery costs a PowerShell or ioreg run on Windows and macOS; wear moves slowly."""
MAX_DISKS = 64
MAX_READINGS = 128
# Kernel pseudo-disks: loop devices back snaps and images, ram disks hold no data to wear out.
_PSEUDO_DISKS = ("loop", "ram")
# Drivers report absent sensors as 0, -273, 127, 128, 255, ...; a real PC part shuts itself down
# well before 125 °C.
_PLAUSIBLE_CELSIUS = (-40.0, 125.0)

_STATE_LOCK = threading.Lock()
T = TypeVar("T")


class _PsutilTemperature(Protocol):
    """What we read of psutil's shwtemp (its class lives in a private module)."""

    @property
    def label(self) -> str: ...
    @property
    def current(self) -> float: ...
    @property
    def high(self) -> float | None: ...
    @property
    def critical(self) -> float | None: ...


class _PsutilFan(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def current(self) -> int: ...


class _PsutilDiskIo(Protocol):
    @property
    def read_count(self) -> int: ...
    @property
    def write_count(self) -> int: ...
    @property
    def read_bytes(self) -> int: ...
    @property
    def write_bytes(self) -> int: ...
    @property
    def read_time(self) -> int: ...
    @property
    def write_time(self) -> int: ...


class _HardwareState:
    """What LiveHardware keeps between calls: caches of costly facts and the usage history."""

    def __init__(self, state_dir: Path | None) -> None:
        self.smart = TtlCache(smart.read_smart, smart.CACHE_TTL_S)
        self.batteries = TtlCache(_read_batteries, 0.0 if _on_linux() else BATTERY_TTL_S)
        self.history = DiskUsageHistory(state_dir / HISTORY_FILE if state_dir else None)


class LiveHardware:
    """Mixed into LiveFacts. No __init__ of its own: LiveFacts sets `state_dir`."""

    state_dir: Path | None
    """Where facts that need memory across runs keep it; None keeps it in memory only."""
    _hardware_state: _HardwareState | None = None
    """Created on first use (a mixin has no __init__ to create it in)."""

    def _hardware(self) -> _HardwareState:
        state = self._hardware_state
        if state is None:
            with _STATE_LOCK:
                state = self._hardware_state
                if state is None:
                    state = self._hardware_state = _HardwareState(self.state_dir)
        return state

    def disk_io(self) -> DiskIoFacts | Unavailable:
        try:
            counters = psutil.disk_io_counters(perdisk=True)
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot read disk I/O counters: {_why(exc)}")
        facts = disk_io_from_psutil(counters or {})
        if not facts.disks:
            return Unavailable("the OS reports no disk I/O counters")
        return facts

    def smart(self) -> SmartFacts | Unavailable:
        return self._hardware().smart.get()

    def batteries(self) -> BatteriesFacts | Unavailable:
        return self._hardware().batteries.get()

    def sensors(self) -> SensorsFacts | Unavailable:
        return read_sensors()

    def disk_usage_history(self, current: DisksFacts) -> DiskUsageHistoryFacts | Unavailable:
        # used = total - free: "full" is when nothing is left that a user may write, so the
        # root-reserved blocks count as used.
        usage = [
            (fs.mountpoint or fs.path, fs.total_bytes - fs.free_bytes, fs.total_bytes)
            for fs in current.filesystems
            if fs.total_bytes > 0
        ]
        kept = self._hardware().history.record(usage, time.time())
        return DiskUsageHistoryFacts(
            tuple(FilesystemHistory(mount, samples) for mount, samples in kept.items()),
            current.errors,
        )

    def hardware_inventory(self) -> dict[str, Any]:
        """Identity and health of disks, batteries and sensors.

        Readings that move every minute (charge, temperatures, I/O counters) are left out so
        that the inventory only changes, and is only re-sent, when the hardware does; checks
        report those readings.
        """
        return {
            "disks": _inventory(self.disk_io(), _disks_inventory),
            "smart": _inventory(self.smart(), _smart_inventory),
            "batteries": _inventory(self.batteries(), _batteries_inventory),
            "sensors": _inventory(self.sensors(), _sensors_inventory),
        }


def disk_io_from_psutil(counters: Mapping[str, _PsutilDiskIo]) -> DiskIoFacts:
    disks = []
    for name in sorted(counters):
        if name.startswith(_PSEUDO_DISKS):
            continue
        io = counters[name]
        busy = getattr(io, "busy_time", None)
        disks.append(
            DiskIo(
                name=name,
                read_count=io.read_count,
                write_count=io.write_count,
                read_bytes=io.read_bytes,
                write_bytes=io.write_bytes,
                read_time_ms=io.read_time,
                write_time_ms=io.write_time,
                busy_time_ms=int(busy) if busy is not None else None,
            )
        )
    return DiskIoFacts(tuple(disks[:MAX_DISKS]))


def sensors_from_psutil(
    temperatures: Mapping[str, Sequence[_PsutilTemperature]],
    fans: Mapping[str, Sequence[_PsutilFan]],
) -> SensorsFacts:
    """psutil's readings, without absent sensors and with bogus marks dropped."""
    readings = [
        TemperatureReading(
            chip=chip,
            label=entry.label or "",
            celsius=float(entry.current),
            high=_plausible(entry.high),
            critical=_plausible(entry.critical),
        )
        for chip, entries in temperatures.items()
        for entry in entries
        if _plausible(entry.current) is not None
    ]
    fan_readings = [
        FanReading(chip=chip, label=entry.label or "", rpm=int(entry.current))
        for chip, entries in fans.items()
        for entry in entries
    ]
    return SensorsFacts(tuple(readings[:MAX_READINGS]), tuple(fan_readings[:MAX_READINGS]))


def read_sensors() -> SensorsFacts | Unavailable:
    # psutil reads temperatures and fans on Linux and FreeBSD only.
    read_temperatures: Callable[[], Any] | None = getattr(psutil, "sensors_temperatures", None)
    read_fans: Callable[[], Any] | None = getattr(psutil, "sensors_fans", None)
    if read_temperatures is None:
        return Unavailable(f"temperature sensors cannot be read on {sys.platform}")
    try:
        temperatures = read_temperatures()
        fans = read_fans() if read_fans is not None else {}
    except _GATHER_ERRORS as exc:
        return Unavailable(f"cannot read the sensors: {_why(exc)}")
    facts = sensors_from_psutil(temperatures or {}, fans or {})
    if not facts.temperatures and not facts.fans:
        where = " (nothing in /sys/class/hwmon or /sys/class/thermal)" if _on_linux() else ""
        return Unavailable(
            f"no temperature sensor found{where}: virtual machines and containers have none"
        )
    return facts


def _read_batteries() -> BatteriesFacts | Unavailable:
    if _on_linux():
        return linux.read_batteries()
    if sys.platform == "win32":
        return windows.read_batteries()
    if sys.platform == "darwin":
        return macos.read_batteries()
    return Unavailable(f"batteries cannot be read on {sys.platform}")


def _on_linux() -> bool:
    return sys.platform.startswith("linux")


def _plausible(celsius: float | None) -> float | None:
    low, high = _PLAUSIBLE_CELSIUS
    if celsius is None or not low < celsius < high or celsius == 0:
        return None
    return float(celsius)


def _why(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _inventory(facts: T | Unavailable, describe: Callable[[T], Any]) -> Any:
    return {"unavailable": facts.reason} if isinstance(facts, Unavailable) else describe(facts)


def _disks_inventory(facts: DiskIoFacts) -> list[str]:
    return [disk.name for disk in facts.disks]


def _smart_inventory(facts: SmartFacts) -> dict[str, Any]:
    return {
        "drives": [
            {
                "device": d.device,
                "protocol": d.protocol,
                "model": d.model,
                "serial": d.serial,
                "firmware": d.firmware,
                "capacity_bytes": d.capacity_bytes,
                "health_passed": d.health_passed,
                "reallocated_sectors": d.reallocated_sectors,
                "pending_sectors": d.pending_sectors,
                "uncorrectable_errors": d.uncorrectable_errors,
                "nvme_percentage_used": d.nvme_percentage_used,
                "nvme_media_errors": d.nvme_media_errors,
            }
            for d in facts.drives
        ],
        "errors": list(facts.errors),
    }


def _batteries_inventory(facts: BatteriesFacts) -> list[dict[str, Any]]:
    return [
        {
            "name": b.name,
            "manufacturer": b.manufacturer,
            "model": b.model,
            "design_capacity": b.design_capacity,
            "capacity_unit": b.capacity_unit,
            # Whole percent: the full capacity drifts a little on every charge.
            "wear_percent": round(b.wear_percent) if b.wear_percent is not None else None,
        }
        for b in facts.batteries
    ]


def _sensors_inventory(facts: SensorsFacts) -> dict[str, Any]:
    return {
        "temperatures": [
            {"name": t.name, "high": t.high, "critical": t.critical} for t in facts.temperatures
        ],
        "fans": [f.name for f in facts.fans],
    }
