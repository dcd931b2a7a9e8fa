"""Typed, frozen hardware facts: disk I/O, SMART, batteries, sensors and disk usage history."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiskIo:
    """Cumulative I/O counters of one disk since boot (psutil.disk_io_counters)."""

    name: str
    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    read_time_ms: int
    write_time_ms: int
    busy_time_ms: int | None = None
    """Time spent doing I/O; Linux and FreeBSD only."""


@dataclass(frozen=True)
class DiskIoFacts:
    disks: tuple[DiskIo, ...]


# smartctl's exit status is a bit mask (smartctl(8), "RETURN VALUES").
SMART_BIT_BAD_COMMAND_LINE = 1 << 0
SMART_BIT_OPEN_FAILED = 1 << 1
SMART_BIT_COMMAND_FAILED = 1 << 2
"""Some SMART command failed or a SMART structure had a bad checksum: answers may be partial."""
SMART_BIT_DISK_FAILING = 1 << 3
SMART_BIT_PREFAIL_NOW = 1 << 4
"""Prefail attributes are at or below their threshold now."""
SMART_BIT_ATTRIBUTE_PAST = 1 << 5
"""Some attributes were at or below their threshold in the past."""
SMART_BIT_ERROR_LOG = 1 << 6
SMART_BIT_SELF_TEST_ERRORS = 1 << 7


@dataclass(frozen=True)
class SmartAttribute:
    """One ATA SMART attribute as smartctl reports it."""

    id: int
    name: str
    value: int | None
    """Normalised value (vendor scale, usually 1-253; lower is worse)."""
    worst: int | None
    threshold: int | None
    raw: int
    """The count behind the attribute (sectors, hours, ...), from smartctl's raw string."""
    prefailure: bool
    when_failed: str
    """"now", "past" or "" (never), as smartctl judges value against threshold."""


@dataclass(frozen=True)
class SmartDrive:
    """SMART health of one drive. Fields a protocol does not have are None."""

    device: str
    protocol: str
    """"ATA", "NVMe" or "SCSI"."""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    capacity_bytes: int | None = None
    health_passed: bool | None = None
    """smartctl's overall-health self-assessment; None when the drive did not answer it."""
    exit_status: int = 0
    """smartctl's exit bit mask for this drive (SMART_BIT_*)."""
    temperature_celsius: float | None = None
    power_on_hours: int | None = None
    reallocated_sectors: int | None = None
    """ATA 5 (Reallocated_Sector_Ct), or SCSI grown defects."""
    pending_sectors: int | None = None
    """ATA 197 (Current_Pending_Sector): sectors that could not be read and wait for a rewrite."""
    uncorrectable_errors: int | None = None
    """ATA 198 (Offline_Uncorrectable) plus 187 (Reported_Uncorrect) where present."""
    nvme_critical_warning: int | None = None
    """NVMe critical warning bit field (0 = no warning)."""
    nvme_percentage_used: int | None = None
    """NVMe vendor estimate of endurance used; may exceed 100."""
    nvme_available_spare: int | None = None
    nvme_available_spare_threshold: int | None = None
    nvme_media_errors: int | None = None
    attributes: tuple[SmartAttribute, ...] = ()

    @property
    def failing_attributes(self) -> tuple[SmartAttribute, ...]:
        """Attributes at or below their threshold now."""
        return tuple(a for a in self.attributes if a.when_failed == "now")

    @property
    def failed_attributes_in_past(self) -> tuple[SmartAttribute, ...]:
        return tuple(a for a in self.attributes if a.when_failed == "past")


@dataclass(frozen=True)
class SmartFacts:
    drives: tuple[SmartDrive, ...]
    """Drives whose SMART data could be read."""
    errors: tuple[str, ...] = ()
    """Drives that could not be read, with the reason, e.g. "/dev/sdb: Permission denied"."""


@dataclass(frozen=True)
class BatteryFacts:
    """One internal battery. Capacities share `capacity_unit`; None where not reported."""

    name: str
    percent: float | None = None
    """Charge now, 0-100."""
    plugged: bool | None = None
    """On mains power; None when the OS does not say."""
    status: str = ""
    """The OS's own word: "Charging", "Discharging", "Full", ..."""
    full_capacity: float | None = None
    """What the battery holds when fully charged today."""
    design_capacity: float | None = None
    """What it held new."""
    capacity_unit: str = ""
    """"Wh", "mAh", or "%" when the OS gives only the health as a share of design."""
    cycle_count: int | None = None
    manufacturer: str = ""
    model: str = ""

    @property
    def health_percent(self) -> float | None:
        """Full capacity as a share of design capacity (may exceed 100 on a new battery)."""
        if not self.design_capacity or self.full_capacity is None:
            return None
        return 100.0 * self.full_capacity / self.design_capacity

    @property
    def wear_percent(self) -> float | None:
        """Capacity lost since new, 0-100."""
        health = self.health_percent
        return None if health is None else min(100.0, max(0.0, 100.0 - health))


NO_BATTERY = (
    "no battery: this machine runs on mains power only (a desktop, server or virtual machine)"
)


@dataclass(frozen=True)
class BatteriesFacts:
    batteries: tuple[BatteryFacts, ...]
    """Empty on a machine without a battery (a desktop, a server, a virtual machine)."""


@dataclass(frozen=True)
class TemperatureReading:
    chip: str
    """The driver or zone, e.g. "coretemp", "nvme", "acpitz"."""
    label: str
    """The sensor within the chip, e.g. "Package id 0"; may be empty."""
    celsius: float
    high: float | None = None
    """The hardware's own "too hot" mark; None when it has none."""
    critical: float | None = None
    """The hardware's own "shut down soon" mark; None when it has none."""

    @property
    def name(self) -> str:
        return f"{self.chip} {self.label}".strip()


@dataclass(frozen=True)
class FanReading:
    chip: str
    label: str
    rpm: int

    @property
    def name(self) -> str:
        return f"{self.chip} {self.label}".strip()


@dataclass(frozen=True)
class SensorsFacts:
    temperatures: tuple[TemperatureReading, ...]
    fans: tuple[FanReading, ...] = ()


@dataclass(frozen=True)
class DiskUsageSample:
    timestamp: float
    """Seconds since the epoch."""
    used_bytes: int
    """Space not available to users: total minus what they may still write."""
    total_bytes: int


@dataclass(frozen=True)
class FilesystemHistory:
    mountpoint: str
    samples: tuple[DiskUsageSample, ...]
    """Oldest first; the last one is the current usage."""


@dataclass(frozen=True)
class DiskUsageHistoryFacts:
    filesystems: tuple[FilesystemHistory, ...]
    errors: tuple[str, ...] = ()
    """Paths that could not be read now, with the reason."""
