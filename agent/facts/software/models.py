"""Typed, frozen software facts: OS, reboot, packages, updates, processes, services, time, logs."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LOG_ERRORS = 5000
"""Most error entries counted in a window; more is reported as "at least" this many."""


@dataclass(frozen=True)
class OsFacts:
    system: str
    """"Linux", "Windows" or "Darwin" (platform.system())."""
    name: str
    """Human name, e.g. "Debian GNU/Linux 12 (bookworm)", "Windows 11 Pro", "macOS 14.5"."""
    version: str
    """The distribution's or product's version, e.g. "12", "10.0.22631", "14.5"."""
    kernel: str
    """Kernel release (uname -r) or Windows build."""
    architecture: str
    """Machine architecture, e.g. "x86_64", "AMD64", "arm64"."""
    distribution_id: str = ""
    """os-release ID on Linux ("debian", "ubuntu", "fedora"); empty elsewhere."""
    codename: str = ""


@dataclass(frozen=True)
class RebootFacts:
    required: bool
    reasons: tuple[str, ...] = ()
    """What says a restart is pending, in plain words (a flag file, a registry key, ...)."""
    packages: tuple[str, ...] = ()
    """Packages whose update asked for the restart, where the OS names them."""
    pending_seconds: float | None = None
    """How long the restart has been pending, where the OS tells (the flag file's age)."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    architecture: str = ""


@dataclass(frozen=True)
class PackagesFacts:
    manager: str
    """"dpkg", "rpm", "windows-uninstall-registry" or "macos-applications"."""
    packages: tuple[Package, ...]


@dataclass(frozen=True)
class PendingUpdate:
    name: str
    new_version: str
    current_version: str = ""
    security: bool = False
    origin: str = ""
    """Where the update comes from (apt origin/suite, dnf repository, KB number, ...)."""


@dataclass(frozen=True)
class UpdatesFacts:
    manager: str
    """"apt", "dnf", "windows-update" or "macos-softwareupdate"."""
    updates: tuple[PendingUpdate, ...]
    security_known: bool = True
    """False where the source does not say which updates fix security problems."""
    lists_age_seconds: float | None = None
    """Age of the local package lists the answer comes from: the agent never refreshes them,
    so old lists understate what is pending."""

    @property
    def pending(self) -> int:
        return len(self.updates)

    @property
    def security(self) -> int | None:
        if not self.security_known:
            return None
        return sum(1 for update in self.updates if update.security)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str
    user: str
    cpu_percent: float | None
    """Share of ONE core used since the previous sample (a busy thread shows 100; several
    busy threads more than 100), as top shows it; None when not yet sampled."""
    rss_bytes: int
    memory_percent: float
    """Resident memory as a share of the machine's RAM."""


@dataclass(frozen=True)
class ProcessesFacts:
    top_by_cpu: tuple[ProcessInfo, ...]
    """Busiest first; empty on the first sample, when there is no interval to measure over."""
    top_by_memory: tuple[ProcessInfo, ...]
    """Largest resident memory first."""
    process_count: int
    logical_cores: int
    memory_total_bytes: int
    cpu_window_seconds: float | None
    """Time since the previous sample that CPU use is measured over; None on the first one."""


@dataclass(frozen=True)
class ServiceState:
    name: str
    """The service's name (systemd unit without ".service", Windows service name)."""
    running: bool
    """Up: systemd "active" (a finished one-shot unit counts), Windows "running"."""
    failed: bool
    """The service manager marks it failed (systemd); never set on Windows, which has no
    such state."""
    state: str
    """The manager's own words, e.g. "active/running", "failed/failed", "stopped"."""
    description: str = ""
    display_name: str = ""
    """Windows' display name ("Windows Update" for wuauserv); empty elsewhere."""


@dataclass(frozen=True)
class ServicesFacts:
    manager: str
    """"systemd", "windows" or "launchd"."""
    services: tuple[ServiceState, ...]

    @property
    def failed(self) -> tuple[ServiceState, ...]:
        return tuple(s for s in self.services if s.failed)


@dataclass(frozen=True)
class TimeSyncFacts:
    source: str
    """Where the answer came from: "kernel+chrony", "kernel", "timedatectl", "w32tm", ..."""
    synchronized: bool | None
    """The OS says its clock is synchronised; None where it does not tell."""
    offset_ms: float | None = None
    """Difference between this clock and the reference, absolute, in ms; None if not exposed."""
    ntp_enabled: bool | None = None
    """Network time is switched on; None where it does not tell."""
    server: str = ""


@dataclass(frozen=True)
class LogErrorsFacts:
    source: str
    """"journald", "/var/log/syslog (keyword match)", "windows-system-log", ..."""
    errors_last_hour: int
    window_seconds: float
    truncated: bool = False
    """The count hit its bound: there were at least this many."""
