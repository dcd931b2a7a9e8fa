"""Typed, frozen facts about the machine: what agent/facts gathers and checks judge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unavailable:
    """A fact that could not be gathered, and why (it becomes an UNKNOWN result)."""

    reason: str


@dataclass(frozen=True)
class CpuFacts:
    logical_cores: int
    physical_cores: int | None
    percent: float
    """Whole-machine CPU use over the sampling interval, 0-100."""
    load_1m: float
    load_5m: float
    load_15m: float
    """Load averages (run-queue length); psutil emulates them where the OS has none."""
    model: str = ""
    frequency_mhz: float | None = None
    per_core_percent: tuple[float, ...] = ()


@dataclass(frozen=True)
class MemoryFacts:
    total_bytes: int
    available_bytes: int
    used_percent: float
    swap_total_bytes: int
    swap_used_percent: float


@dataclass(frozen=True)
class FilesystemFacts:
    path: str
    """The path asked about, or the mount point when listing every filesystem."""
    mountpoint: str
    device: str
    fstype: str
    total_bytes: int
    free_bytes: int
    used_percent: float
    inodes_total: int | None = None
    """None where the filesystem has no inode table to report (FAT, NTFS, btrfs shows 0)."""
    inodes_free: int | None = None

    @property
    def inodes_used_percent(self) -> float | None:
        if not self.inodes_total or self.inodes_free is None:
            return None
        return 100.0 * (self.inodes_total - self.inodes_free) / self.inodes_total


@dataclass(frozen=True)
class DisksFacts:
    filesystems: tuple[FilesystemFacts, ...]
    errors: tuple[str, ...] = ()
    """Paths that could not be read, with the reason, e.g. "/data: No such file or directory"."""


@dataclass(frozen=True)
class UptimeFacts:
    boot_time: float
    """Seconds since the epoch."""
    uptime_seconds: float


@dataclass(frozen=True)
class InterfaceFacts:
    name: str
    is_up: bool
    speed_mbps: int
    mtu: int
    addresses: tuple[str, ...]
    errors_in: int = 0
    errors_out: int = 0
    drops_in: int = 0
    drops_out: int = 0
    bytes_sent: int = 0
    bytes_recv: int = 0


@dataclass(frozen=True)
class InterfacesFacts:
    interfaces: tuple[InterfaceFacts, ...]


@dataclass(frozen=True)
class DnsLookup:
    name: str
    addresses: tuple[str, ...]
    elapsed_ms: float
    error: str | None = None
    """Why the name did not resolve; None when it did."""


@dataclass(frozen=True)
class DnsFacts:
    lookups: tuple[DnsLookup, ...]


@dataclass(frozen=True)
class GatewayFacts:
    target: str
    """The address probed: the default gateway, or the configured target."""
    method: str
    """"icmp" or "tcp:<port>" (a refused TCP connection still proves the host answered)."""
    sent: int
    received: int
    rtt_ms: tuple[float, ...]
    """Round-trip times of the probes that were answered."""

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def avg_rtt_ms(self) -> float | None:
        return sum(self.rtt_ms) / len(self.rtt_ms) if self.rtt_ms else None
