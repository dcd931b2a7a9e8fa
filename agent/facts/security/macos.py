"""macOS security facts: the Application Firewall, XProtect, FileVault.

Written against the documented tools (socketfilterfw, fdesetup, diskutil, system_profiler) and
XProtect's bundle, and tested on recorded outputs.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.security.models import (
    AntivirusProduct,
    DiskEncryptionFacts,
    EncryptionState,
    FirewallFacts,
    VolumeEncryption,
)

TOOL_TIMEOUT_S = 10.0
DAY_SECONDS = 86400.0
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
XPROTECT_PLISTS = (
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",  # before macOS 11
)

# --- firewall ----------------------------------------------------------------------------------

_FIREWALL_STATES = {
    0: (False, "off"),
    1: (True, "on"),
    2: (True, "on, blocking all incoming connections"),
}


def parse_socketfilterfw(text: str) -> FirewallFacts | Unavailable:
    """`socketfilterfw --getglobalstate`: "Firewall is enabled. (State = 1)" and the like."""
    match = re.search(r"State\s*=\s*(\d)", text)
    if match and int(match.group(1)) in _FIREWALL_STATES:
        enabled, words = _FIREWALL_STATES[int(match.group(1))]
    elif re.search(r"Firewall is (enabled|on)", text, re.IGNORECASE):
        enabled, words = True, "on"
    elif re.search(r"Firewall is (disabled|off)", text, re.IGNORECASE):
        enabled, words = False, "off"
    else:
        return Unavailable(f"unexpected socketfilterfw output: {text.strip()[:200]!r}")
    # The Application Firewall only ever filters incoming connections, so on means filtering.
    return FirewallFacts("macOS Application Firewall", enabled, enabled, words)


def firewall() -> FirewallFacts | Unavailable:
    output = run_command((SOCKETFILTERFW, "--getglobalstate"), TOOL_TIMEOUT_S)
    if isinstance(output, Unavailable):
        return output
    return parse_socketfilterfw(output.stdout)


# --- XProtect ----------------------------------------------------------------------------------


def parse_xprotect_plist(data: bytes) -> str | Unavailable:
    """XProtect.bundle's Info.plist (XML or binary): its version."""
    try:
        info = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError) as exc:
        return Unavailable(f"XProtect Info.plist does not parse: {exc}")
    version = info.get("CFBundleShortVersionString") if isinstance(info, Mapping) else None
    if not version:
        return Unavailable("XProtect Info.plist has no CFBundleShortVersionString")
    return str(version)


def parse_install_history(text: str) -> tuple[str, datetime] | Unavailable:
    """`system_profiler SPInstallHistoryDataType -json`: version and date of the newest
    XProtect data install (XProtectPlistConfigData, XProtectPayloads)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Unavailable(f"system_profiler printed JSON that does not parse: {exc}")
    items = document.get("SPInstallHistoryDataType") if isinstance(document, Mapping) else None
    newest: tuple[str, datetime] | None = None
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping) or not str(item.get("_name", "")).startswith("XProtect"):
            continue
        when = _iso_date(item.get("install_date"))
        if when is not None and (newest is None or when > newest[1]):
            newest = (str(item.get("install_version", "")), when)
    if newest is None:
        return Unavailable("no XProtect update in the install history")
    return newest


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def xprotect_product(version: str, updated: datetime, now: datetime) -> AntivirusProduct:
    return AntivirusProduct(
        "XProtect",
        "XProtect",
        # Built into macOS; users cannot turn it off.
        enabled=True,
        up_to_date=None,
        definitions_updated=updated,
        definitions_age_days=max(0.0, (now - updated).total_seconds() / DAY_SECONDS),
        version=version,
    )


def xprotect(now: datetime) -> AntivirusProduct | Unavailable:
    """XProtect's version and last update: from its bundle (cheap), else the install history."""
    reasons = []
    for path in XPROTECT_PLISTS:
        try:
            with open(path, "rb") as handle:
                data = handle.read(1024 * 1024)
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            reasons.append(f"{path}: {exc.strerror or exc}")
            continue
        version = parse_xprotect_plist(data)
        if isinstance(version, Unavailable):
            reasons.append(version.reason)
            continue
        return xprotect_product(version, datetime.fromtimestamp(mtime, UTC), now)
    output = run_command(("system_profiler", "SPInstallHistoryDataType", "-json"), 60.0)
    if isinstance(output, Unavailable):
        return Unavailable("; ".join([*reasons, output.reason]))
    found = parse_install_history(output.stdout)
    if isinstance(found, Unavailable):
        return Unavailable("; ".join([*reasons, found.reason]))
    return xprotect_product(*found, now)


# --- FileVault ---------------------------------------------------------------------------------


def parse_fdesetup_status(text: str) -> VolumeEncryption | Unavailable:
    """`fdesetup status`: FileVault on or off, and a conversion in progress with its percent."""
    on = re.search(r"FileVault is (On|Off)", text)
    if on is None:
        return Unavailable(f"unexpected fdesetup output: {text.strip()[:200]!r}")
    percent_match = re.search(r"Percent completed = ([\d.]+)", text)
    percent = float(percent_match.group(1)) if percent_match else None
    if re.search(r"Encryption in progress", text):
        state = EncryptionState.ENCRYPTING
    elif re.search(r"Encryption paused", text, re.IGNORECASE):
        state = EncryptionState.ENCRYPTION_PAUSED
    elif re.search(r"Decryption in progress", text):
        state = EncryptionState.DECRYPTING
    elif re.search(r"Deferred enablement", text):
        state = EncryptionState.PENDING
    elif on.group(1) == "On":
        state, percent = EncryptionState.ENCRYPTED, 100.0
    else:
        state = EncryptionState.NOT_ENCRYPTED
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    method = "" if state is EncryptionState.NOT_ENCRYPTED else "FileVault"
    return VolumeEncryption(
        "/", "", state, method, percent, system=True, detail=" ".join(lines)[:200]
    )


def parse_diskutil_info(data: bytes) -> bool | Unavailable:
    """`diskutil info -plist <volume>`: whether the volume is encrypted (FileVault or APFS
    encryption)."""
    try:
        info = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError) as exc:
        return Unavailable(f"diskutil printed a plist that does not parse: {exc}")
    if not isinstance(info, Mapping):
        return Unavailable("diskutil printed no dictionary")
    flags = [info[key] for key in ("FileVault", "Encryption") if isinstance(info.get(key), bool)]
    if not flags:
        return Unavailable("diskutil does not say whether the volume is encrypted")
    return any(flags)


def disk_encryption(mountpoints: Sequence[str]) -> DiskEncryptionFacts | Unavailable:
    output = run_command(("fdesetup", "status"), TOOL_TIMEOUT_S)
    if isinstance(output, Unavailable):
        return output
    system = parse_fdesetup_status(output.stdout)
    if isinstance(system, Unavailable):
        return system
    volumes = [system]
    errors = []
    for path in mountpoints:
        if os.path.realpath(path) == "/":
            continue
        info = run_command(("diskutil", "info", "-plist", path), TOOL_TIMEOUT_S)
        encrypted = (
            info if isinstance(info, Unavailable) else parse_diskutil_info(info.stdout.encode())
        )
        if isinstance(encrypted, Unavailable):
            errors.append(f"{path}: {encrypted.reason}")
            continue
        state = EncryptionState.ENCRYPTED if encrypted else EncryptionState.NOT_ENCRYPTED
        volumes.append(VolumeEncryption(path, path, state, "APFS encryption" if encrypted else ""))
    return DiskEncryptionFacts(tuple(volumes), tuple(errors))
