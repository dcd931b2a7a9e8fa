"""Software facts on Windows: registry via `reg query`, Windows Update's COM API, services,
w32tm and the System event log.

Written against the documented interfaces and tested on recorded outputs; only the parsers
run off Windows. Every tool is started through agent/facts/command.py (no shell).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
from typing import Any

import psutil

from agent.facts.cache import MtimeCache, signature
from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.software.models import (
    MAX_LOG_ERRORS,
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

HOUR_S = 3600.0
DAY_S = 86400.0

# --- parsers (pure) -------------------------------------------------------------------------

RegistryValues = dict[str, tuple[str, str]]
"""Value name -> (type, data) under one key, as `reg query` prints them."""

_REG_VALUE = re.compile(r"^ {4}(?P<name>.*?) {4}(?P<type>REG_[A-Z_]+)(?: {4}(?P<data>.*))?$")


def parse_reg_query(text: str) -> dict[str, RegistryValues]:
    """Keys and their values in `reg query` output (with or without /s).

    Each key is a line starting with HKEY_, followed by its values indented by four spaces:
    name, type and data separated by four spaces.
    """
    keys: dict[str, RegistryValues] = {}
    current: RegistryValues | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("HKEY_"):
            current = keys.setdefault(line.strip(), {})
            continue
        match = _REG_VALUE.match(line)
        if match and current is not None:
            current[match["name"]] = (match["type"], (match["data"] or "").strip())
    return keys


def parse_uninstall_entries(text: str) -> tuple[Package, ...]:
    """Programs listed in Add/Remove Programs, from `reg query <Uninstall key> /s`.

    Like the Control Panel, entries without a DisplayName, system components and updates
    (entries with a parent) are left out.
    """
    found: dict[tuple[str, str], Package] = {}
    for values in parse_reg_query(text).values():
        name = values.get("DisplayName", ("", ""))[1]
        if not name:
            continue
        if values.get("SystemComponent", ("", ""))[1] in ("0x1", "1"):
            continue
        if "ParentKeyName" in values:
            continue
        version = values.get("DisplayVersion", ("", ""))[1]
        found.setdefault((name, version), Package(name, version))
    return tuple(sorted(found.values(), key=lambda p: (p.name.casefold(), p.version)))


def parse_pending_file_renames(text: str) -> tuple[str, ...]:
    """Files queued for replacement at the next restart (PendingFileRenameOperations).

    `reg query` prints REG_MULTI_SZ data with a literal "\\0" between strings; the list holds
    (source, destination) pairs with an empty destination meaning "delete".
    """
    for values in parse_reg_query(text).values():
        entry = values.get("PendingFileRenameOperations")
        if entry:
            parts = entry[1].split("\\0")
            sources = [p.removeprefix("\\??\\") for p in parts[0::2] if p]
            return tuple(sources)
    return ()


def reboot_from_registry(
    cbs_pending: str | None, wu_required: str | None, file_renames: str | None
) -> RebootFacts:
    """RebootFacts from the `reg query` output of the three documented places (None: absent)."""
    reasons = []
    if cbs_pending is not None and parse_reg_query(cbs_pending):
        reasons.append("Windows component servicing is waiting for a restart (RebootPending)")
    if wu_required is not None and parse_reg_query(wu_required):
        reasons.append("Windows Update is waiting for a restart (RebootRequired)")
    renames = parse_pending_file_renames(file_renames) if file_renames is not None else ()
    if renames:
        reasons.append(
            f"{len(renames)} file(s) are waiting to be replaced at the next restart "
            "(PendingFileRenameOperations)"
        )
    return RebootFacts(required=bool(reasons), reasons=tuple(reasons))


def parse_windows_updates(text: str) -> tuple[PendingUpdate, ...]:
    """Updates from the JSON that UPDATES_SCRIPT prints (one object or a list of them)."""
    data: Any = json.loads(text) if text.strip() else []
    if isinstance(data, dict):
        data = [data]
    updates = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        categories = item.get("Categories") or []
        if isinstance(categories, str):
            categories = [categories]
        severity = str(item.get("Severity") or "")
        kb = str(item.get("KB") or "")
        updates.append(
            PendingUpdate(
                name=str(item.get("Title") or kb or "unnamed update"),
                new_version=f"KB{kb}" if kb and not kb.upper().startswith("KB") else kb,
                # Microsoft rates security bulletins (MsrcSeverity); definition and driver
                # updates have no rating. "Security Updates" is the classification's name.
                security=bool(severity) or "Security Updates" in categories,
                origin=", ".join(str(c) for c in categories),
            )
        )
    return tuple(updates)


_W32TM_LINE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>.*?)\s*$")
_UNSYNCED_SOURCES = ("Local CMOS Clock", "Free-running System Clock")


def parse_w32tm_status(text: str) -> TimeSyncFacts | None:
    """`w32tm /query /status /verbose`; None when the output is not the English one we know.

    Not synchronised: leap indicator 3, or the source is the machine's own clock. "Phase
    Offset" (only with /verbose) is the current offset from the time source.
    """
    props: dict[str, str] = {}
    for line in text.splitlines():
        match = _W32TM_LINE.match(line)
        if match:
            props.setdefault(match["key"], match["value"])
    leap = props.get("Leap Indicator")
    source = props.get("Source", "")
    if leap is None and not source:
        return None
    synced = not (leap or "").startswith("3") and not source.startswith(_UNSYNCED_SOURCES)
    offset_ms = None
    offset = props.get("Phase Offset", "").removesuffix("s")
    if synced and offset:
        with contextlib.suppress(ValueError):
            offset_ms = abs(float(offset)) * 1000.0
    server = source.split(",")[0] if not source.startswith(_UNSYNCED_SOURCES) else ""
    return TimeSyncFacts(
        source="w32tm", synchronized=synced, offset_ms=offset_ms, ntp_enabled=None, server=server
    )


_EVENT_HEADER = re.compile(r"^Event\[\d+\]", re.MULTILINE)


def count_wevtutil_events(text: str) -> int:
    """Events in `wevtutil qe ... /f:text` output: each starts with an "Event[n]:" line."""
    return len(_EVENT_HEADER.findall(text))


_EDITIONS = {"Core": "Home", "Professional": "Pro"}


def windows_name(release: str, version: str, edition: str) -> str:
    """ "Windows 11 Pro" from platform.win32_ver() and win32_edition().

    Windows 11 still calls itself release 10 to older Pythons; its builds start at 22000.
    """
    try:
        build = int(version.split(".")[2])
    except (IndexError, ValueError):
        build = 0
    if release == "10" and build >= 22000:
        release = "11"
    return " ".join(part for part in ("Windows", release, _EDITIONS.get(edition, edition)) if part)


# --- gatherers ------------------------------------------------------------------------------


def operating_system() -> OsFacts | Unavailable:
    release, version, _csd, _ptype = platform.win32_ver()
    edition = platform.win32_edition() or ""
    return OsFacts(
        system="Windows",
        name=windows_name(release, version, edition),
        version=version,
        kernel=version,
        architecture=platform.machine(),
    )


CBS_REBOOT_PENDING = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
)
WU_REBOOT_REQUIRED = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
)
SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"


def _reg_query(*args: str) -> str | Unavailable | None:
    """stdout of `reg query`, None when the key or value does not exist (exit code 1)."""
    # /reg:64: the 64-bit view even from a 32-bit Python, where the keys really live.
    done = run_command(["reg", "query", *args, "/reg:64"], timeout_s=20, ok_codes=(0, 1))
    if isinstance(done, Unavailable):
        return done
    return done.stdout if done.returncode == 0 else None


def reboot_required() -> RebootFacts | Unavailable:
    answers = []
    for args in (
        (CBS_REBOOT_PENDING,),
        (WU_REBOOT_REQUIRED,),
        (SESSION_MANAGER, "/v", "PendingFileRenameOperations"),
    ):
        answer = _reg_query(*args)
        if isinstance(answer, Unavailable):
            return answer
        answers.append(answer)
    return reboot_from_registry(*answers)


UNINSTALL_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
)
# The registry has no cheap change stamp we can stat: re-read at most hourly.
_PACKAGES = MtimeCache[PackagesFacts | Unavailable](max_age_s=HOUR_S)


def packages() -> PackagesFacts | Unavailable:
    return _PACKAGES.get("uninstall-registry", _read_uninstall_keys)


def _read_uninstall_keys() -> PackagesFacts | Unavailable:
    found: dict[tuple[str, str], Package] = {}
    for key in UNINSTALL_KEYS:
        answer = _reg_query(key, "/s")
        if isinstance(answer, Unavailable):
            return answer
        for package in parse_uninstall_entries(answer or ""):
            found.setdefault((package.name, package.version), package)
    ordered = sorted(found.values(), key=lambda p: (p.name.casefold(), p.version))
    return PackagesFacts("windows-uninstall-registry", tuple(ordered))


# IUpdateSearcher with Online = false searches the results of the last scan Windows Update
# made itself: no network. IsHidden=0 leaves out updates the user chose to hide.
UPDATES_SCRIPT = """
$ErrorActionPreference = 'Stop'
[Console]::OutputEncoding = [Text.Encoding]::UTF8
$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()
$searcher.Online = $false
$result = $searcher.Search('IsInstalled=0 and IsHidden=0')
$list = @(foreach ($u in $result.Updates) {
  [pscustomobject]@{
    Title = $u.Title
    KB = ($u.KBArticleIDs -join ',')
    Severity = [string]$u.MsrcSeverity
    Categories = @($u.Categories | ForEach-Object { $_.Name })
  }
})
ConvertTo-Json -InputObject $list -Compress -Depth 3
"""
WU_DATASTORE = os.path.join(
    os.environ.get("SYSTEMROOT", r"C:\Windows"),
    "SoftwareDistribution",
    "DataStore",
    "DataStore.edb",
)
_UPDATES = MtimeCache[UpdatesFacts | Unavailable](max_age_s=DAY_S)


def pending_updates() -> UpdatesFacts | Unavailable:
    """Updates Windows Update found but has not installed, cached until its database changes."""
    return _UPDATES.get(signature([WU_DATASTORE]), _search_updates)


def _search_updates() -> UpdatesFacts | Unavailable:
    done = run_command(
        ["powershell", "-NoProfile", "-NonInteractive", "-Command", UPDATES_SCRIPT], timeout_s=120
    )
    if isinstance(done, Unavailable):
        return done
    try:
        return UpdatesFacts("windows-update", parse_windows_updates(done.stdout))
    except ValueError as exc:
        return Unavailable(f"cannot read Windows Update's answer: {exc}")


def services() -> ServicesFacts | Unavailable:
    """Every Windows service and whether it runs, through psutil."""
    iterate = getattr(psutil, "win_service_iter", None)
    if iterate is None:
        return Unavailable("this psutil has no Windows service support")
    found = []
    try:
        for service in iterate():
            try:
                status = service.status()
                display = service.display_name()
            except (OSError, psutil.Error):
                continue  # removed meanwhile, or not ours to query
            found.append(
                ServiceState(
                    name=service.name(),
                    running=status == "running",
                    failed=False,
                    state=status,
                    display_name=display,
                )
            )
    except (OSError, psutil.Error) as exc:
        return Unavailable(f"cannot list Windows services: {exc}")
    return ServicesFacts("windows", tuple(found))


def time_sync() -> TimeSyncFacts | Unavailable:
    done = run_command(["w32tm", "/query", "/status", "/verbose"], timeout_s=10)
    if isinstance(done, Unavailable):
        return done
    parsed = parse_w32tm_status(done.stdout)
    if parsed is None:
        return Unavailable("w32tm answered in a form not understood (a translated Windows?)")
    return parsed


SYSTEM_ERRORS_QUERY = (
    "*[System[(Level=1 or Level=2) and TimeCreated[timediff(@SystemTime) <= {ms}]]]"
)


def log_errors(window_s: float = HOUR_S) -> LogErrorsFacts | Unavailable:
    """Critical and error events of the System log in the window (at most MAX_LOG_ERRORS)."""
    query = SYSTEM_ERRORS_QUERY.format(ms=int(window_s * 1000))
    done = run_command(
        ["wevtutil", "qe", "System", f"/q:{query}", f"/c:{MAX_LOG_ERRORS}", "/f:text"],
        timeout_s=60,
    )
    if isinstance(done, Unavailable):
        return done
    count = count_wevtutil_events(done.stdout)
    return LogErrorsFacts(
        source="windows-system-log",
        errors_last_hour=count,
        window_seconds=window_s,
        truncated=count >= MAX_LOG_ERRORS,
    )
