"""The software part of FactSource: what checks may ask about software."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from agent.facts.models import Unavailable
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


class SoftwareSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""

    def operating_system(self) -> OsFacts | Unavailable:
        """OS name, version, kernel and architecture."""
        ...

    def reboot_required(self) -> RebootFacts | Unavailable:
        """Whether the OS says a restart is pending, why, and since when where it tells."""
        ...

    def packages(self) -> PackagesFacts | Unavailable:
        """Installed packages; cached until the package database changes."""
        ...

    def pending_updates(self) -> UpdatesFacts | Unavailable:
        """Updates the package manager's LOCAL state knows of (never the network); cached
        until that state changes."""
        ...

    def top_processes(self, exclude: Collection[str] = ()) -> ProcessesFacts | Unavailable:
        """The busiest and largest processes, CPU measured since the previous call; names in
        `exclude` (any case) are left out before ranking."""
        ...

    def services(self) -> ServicesFacts | Unavailable:
        """Services and their states from the OS's service manager."""
        ...

    def time_sync(self) -> TimeSyncFacts | Unavailable:
        """Whether the clock is synchronised, and its offset where the OS exposes it."""
        ...

    def log_errors(self) -> LogErrorsFacts | Unavailable:
        """Error-level entries in the system log over the last hour."""
        ...

    def software_inventory(self) -> dict[str, Any]:
        """The software facts as JSON-able sections for the collector's inventory."""
        ...
