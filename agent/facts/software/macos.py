"""Software facts on macOS: system_profiler, softwareupdate's own record, launchd, systemsetup.

Written against the documented interfaces and tested on recorded outputs; only the parsers
run off macOS. Where macOS keeps no local answer (a pending restart, the unified log at a
price a light agent can pay), the fact is Unavailable with the reason.
"""

from __future__ import annotations

import json
import platform
import plistlib
import time
from datetime import datetime
from typing import Any

from agent.facts.cache import MtimeCache, signature
from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.software.models import (
    LogErrorsFacts,
    OsFacts,
    Package,
    PackagesFacts,
    PendingUpdate,
    RebootFacts,
    ServicesFacts,
    ServiceState,
    TimeSyncFacts,
    UpdatesFacts,
)

DAY_S = 86400.0

# --- parsers (pure) -------------------------------------------------------------------------


def parse_system_profiler_apps(text: str) -> tuple[Package, ...]:
    """Applications in `system_profiler SPApplicationsDataType -json` output."""
    data: Any = json.loads(text)
    apps = data.get("SPApplicationsDataType", []) if isinstance(data, dict) else []
    found: dict[tuple[str, str], Package] = {}
    for app in apps:
        if not isinstance(app, dict) or not app.get("_name"):
            continue
        name, version = str(app["_name"]), str(app.get("version", ""))
        found.setdefault((name, version), Package(name, version, str(app.get("arch_kind", ""))))
    return tuple(sorted(found.values(), key=lambda p: (p.name.casefold(), p.version)))


def parse_softwareupdate_plist(data: bytes, now: float) -> UpdatesFacts | None:
    """Updates from softwareupdated's record of its last background check.

    /Library/Preferences/com.apple.SoftwareUpdate.plist keeps "RecommendedUpdates" (one dict
    per update: "Display Name", "Display Version", "Product Key") and "LastSuccessfulDate".
    It does not say which updates are security ones. None when no check is recorded.
    """
    plist = plistlib.loads(data)
    if not isinstance(plist, dict) or "RecommendedUpdates" not in plist:
        return None
    updates = tuple(
        PendingUpdate(
            name=str(item.get("Display Name") or item.get("Identifier") or "unnamed update"),
            new_version=str(item.get("Display Version", "")),
            origin=str(item.get("Product Key", "")),
        )
        for item in plist.get("RecommendedUpdates") or []
        if isinstance(item, dict)
    )
    checked = plist.get("LastSuccessfulDate")
    age = max(0.0, now - checked.timestamp()) if isinstance(checked, datetime) else None
    return UpdatesFacts(
        "macos-softwareupdate", updates, security_known=False, lists_age_seconds=age
    )


def parse_launchctl_list(text: str) -> tuple[ServiceState, ...]:
    """`launchctl list`: "PID  Status  Label" rows; PID "-" means not running now.

    launchd has no failed state: a job that is not running and exited non-zero is often an
    on-demand job that simply ended, so nothing is marked failed.
    """
    found = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) != 3:
            continue
        pid, status, label = parts
        running = pid != "-"
        found.append(
            ServiceState(
                name=label,
                running=running,
                failed=False,
                state="running" if running else f"not running (last exit {status})",
            )
        )
    return tuple(found)


def parse_network_time(text: str) -> bool | None:
    """`systemsetup -getusingnetworktime`: "Network Time: On" or "Network Time: Off"."""
    _, sep, value = text.partition("Network Time:")
    if not sep:
        return None
    word = value.strip().split()[0].lower() if value.strip() else ""
    return {"on": True, "off": False}.get(word)


# --- gatherers ------------------------------------------------------------------------------


def operating_system() -> OsFacts | Unavailable:
    version = platform.mac_ver()[0]
    return OsFacts(
        system="Darwin",
        name=f"macOS {version}".strip(),
        version=version,
        kernel=platform.release(),
        architecture=platform.machine(),
    )


def reboot_required() -> RebootFacts | Unavailable:
    return Unavailable(
        "macOS keeps no pending-restart flag; only `softwareupdate -l` tells, and it asks "
        "Apple's servers"
    )


APPLICATION_DIRS = ("/Applications", "/System/Applications")
_PACKAGES = MtimeCache[PackagesFacts | Unavailable](max_age_s=DAY_S)


def packages() -> PackagesFacts | Unavailable:
    """Installed applications; system_profiler is slow: re-run only when /Applications changes."""
    return _PACKAGES.get(signature(APPLICATION_DIRS), _profile_applications)


def _profile_applications() -> PackagesFacts | Unavailable:
    done = run_command(
        ["system_profiler", "SPApplicationsDataType", "-json"],
        timeout_s=180,
    )
    if isinstance(done, Unavailable):
        return done
    try:
        return PackagesFacts("macos-applications", parse_system_profiler_apps(done.stdout))
    except ValueError as exc:
        return Unavailable(f"cannot read system_profiler's answer: {exc}")


SOFTWAREUPDATE_PLIST = "/Library/Preferences/com.apple.SoftwareUpdate.plist"


def pending_updates(plist_path: str = SOFTWAREUPDATE_PLIST) -> UpdatesFacts | Unavailable:
    try:
        with open(plist_path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return Unavailable(f"cannot read {plist_path}: {exc.strerror or exc}")
    try:
        found = parse_softwareupdate_plist(data, time.time())
    except (ValueError, plistlib.InvalidFileException) as exc:
        return Unavailable(f"cannot read {plist_path}: {exc}")
    if found is None:
        return Unavailable(
            "macOS has not recorded a background update check; `softwareupdate -l` would ask "
            "Apple's servers"
        )
    return found


def services() -> ServicesFacts | Unavailable:
    done = run_command(["launchctl", "list"], timeout_s=20)
    if isinstance(done, Unavailable):
        return done
    return ServicesFacts("launchd", parse_launchctl_list(done.stdout))


def time_sync() -> TimeSyncFacts | Unavailable:
    done = run_command(["systemsetup", "-getusingnetworktime"], timeout_s=10)
    if isinstance(done, Unavailable):
        return done
    enabled = parse_network_time(done.stdout)
    if enabled is None:
        return Unavailable(f"systemsetup answered {done.stdout.strip()[:120]!r}")
    # macOS does not expose whether timed is synchronised, nor the offset, without a network
    # query (sntp); only whether network time is switched on.
    return TimeSyncFacts(source="systemsetup", synchronized=None, ntp_enabled=enabled)


def log_errors() -> LogErrorsFacts | Unavailable:
    return Unavailable(
        "counting errors in macOS's unified log (`log show`) costs seconds of CPU; "
        "a light agent does not do it"
    )
