"""LiveSoftware: software facts read from this machine, through its platform's module."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

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
from agent.facts.software.processes import TOP, ProcessSampler

if sys.platform == "win32":
    from agent.facts.software import windows as _os
elif sys.platform == "darwin":
    from agent.facts.software import macos as _os
else:
    from agent.facts.software import linux as _os

INVENTORY_PACKAGES = 5000
"""Most packages listed in the inventory (the count is always the whole)."""


class LiveSoftware:
    """Mixed into LiveFacts. No __init__ of its own: LiveFacts sets `state_dir`.

    State that must live as long as the source (the process sampler, the log error counter)
    is created on first use, in attributes prefixed `_software_`.
    """

    state_dir: Path | None
    """Where facts that need memory across runs keep it; None keeps it in memory only."""
    _software_sampler: ProcessSampler | None = None
    _software_last_processes: ProcessesFacts | Unavailable | None = None
    _software_log_counter: _os.LogErrorCounter | None = None

    def operating_system(self) -> OsFacts | Unavailable:
        return _os.operating_system()

    def reboot_required(self) -> RebootFacts | Unavailable:
        return _os.reboot_required()

    def packages(self) -> PackagesFacts | Unavailable:
        return _os.packages()

    def pending_updates(self) -> UpdatesFacts | Unavailable:
        if sys.platform == "win32" or sys.platform == "darwin":
            return _os.pending_updates()
        return _os.pending_updates(self.state_dir)

    def top_processes(self, exclude: Collection[str] = ()) -> ProcessesFacts | Unavailable:
        if self._software_sampler is None:
            self._software_sampler = ProcessSampler()
        found = self._software_sampler.sample(exclude)
        self._software_last_processes = found
        return found

    def services(self) -> ServicesFacts | Unavailable:
        return _os.services()

    def time_sync(self) -> TimeSyncFacts | Unavailable:
        return _os.time_sync()

    def log_errors(self) -> LogErrorsFacts | Unavailable:
        if sys.platform == "win32" or sys.platform == "darwin":
            return _os.log_errors()
        if self._software_log_counter is None:
            self._software_log_counter = _os.LogErrorCounter()
        return self._software_log_counter.count()

    def software_inventory(self) -> dict[str, Any]:
        """OS, reboot, packages, updates, services, time sync and the top processes.

        The top processes come from the last sample a check took, when there is one, so the
        inventory does not cut short the interval process.runaway measures CPU over.
        """
        processes = self._software_last_processes
        if processes is None:
            processes = self.top_processes()
        return {
            "os": _section(self.operating_system()),
            "reboot": _reboot_section(self.reboot_required()),
            "packages": _packages_section(self.packages()),
            "updates": _updates_section(self.pending_updates()),
            "services": _services_section(self.services()),
            "time_sync": _section(self.time_sync()),
            "processes": _processes_section(processes),
        }


def _section(facts: Any) -> dict[str, Any]:
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    found: dict[str, Any] = dataclasses.asdict(facts)
    return found


def _reboot_section(facts: RebootFacts | Unavailable) -> dict[str, Any]:
    # How long it has been pending grows by the minute: not part of the machine's make-up.
    section = _section(facts)
    section.pop("pending_seconds", None)
    return section


def _packages_section(facts: PackagesFacts | Unavailable) -> dict[str, Any]:
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    return {
        "manager": facts.manager,
        "count": len(facts.packages),
        "items": [[p.name, p.version] for p in facts.packages[:INVENTORY_PACKAGES]],
    }


def _updates_section(facts: UpdatesFacts | Unavailable) -> dict[str, Any]:
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    return {
        "manager": facts.manager,
        "pending": facts.pending,
        "security": facts.security,
        "items": [[u.name, u.new_version, u.security] for u in facts.updates[:INVENTORY_PACKAGES]],
    }


def _services_section(facts: ServicesFacts | Unavailable) -> dict[str, Any]:
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    return {
        "manager": facts.manager,
        "count": len(facts.services),
        "failed": [s.name for s in facts.failed],
        "items": [[s.name, s.state] for s in facts.services],
    }


def _processes_section(facts: ProcessesFacts | Unavailable) -> dict[str, Any]:
    # The readings themselves (CPU, memory) are volatile: agent/inventory.py drops
    # "top_by_cpu"/"top_by_memory" before diffing; the count of processes stays.
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    return {
        "top_by_cpu": [dataclasses.asdict(p) for p in facts.top_by_cpu[:TOP]],
        "top_by_memory": [dataclasses.asdict(p) for p in facts.top_by_memory[:TOP]],
    }
