"""Windows security facts: Windows Firewall, Security Center and Defender, BitLocker.

Written against the documented interfaces (Get-NetFirewallProfile, netsh advfirewall,
root/SecurityCenter2 AntiVirusProduct, Get-MpComputerStatus, manage-bde) and tested on recorded
outputs. PowerShell output is asked for as JSON with values turned to strings, so it does not
depend on the display language; netsh and manage-bde are parsed in English only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.security.models import (
    AntivirusFacts,
    AntivirusProduct,
    DiskEncryptionFacts,
    EncryptionState,
    FirewallFacts,
    FirewallProfile,
    VolumeEncryption,
)

TOOL_TIMEOUT_S = 20.0  # PowerShell alone takes a second or two to start
DAY_SECONDS = 86400.0

_UTF8 = "[Console]::OutputEncoding = [Text.Encoding]::UTF8; "
FIREWALL_SCRIPT = _UTF8 + (
    "Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name, "
    "@{n='Enabled';e={[string]$_.Enabled}}, "
    "@{n='DefaultInboundAction';e={[string]$_.DefaultInboundAction}} | ConvertTo-Json"
)
SECURITY_CENTER_SCRIPT = _UTF8 + (
    "Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct "
    "-ErrorAction Stop | Select-Object displayName, productState, timestamp | ConvertTo-Json"
)
DEFENDER_SCRIPT = _UTF8 + (
    "Get-MpComputerStatus -ErrorAction Stop | Select-Object AMServiceEnabled, "
    "AntivirusEnabled, RealTimeProtectionEnabled, AntivirusSignatureAge, "
    "AntivirusSignatureVersion, AntivirusSignatureLastUpdated | ConvertTo-Json"
)


def _powershell(script: str) -> str | Unavailable:
    output = run_command(
        ("powershell", "-NoProfile", "-NonInteractive", "-Command", script), TOOL_TIMEOUT_S
    )
    return output if isinstance(output, Unavailable) else output.stdout


def _json_objects(text: str, what: str) -> list[Mapping[str, Any]] | Unavailable:
    """ConvertTo-Json prints one object bare and several as a list; nothing for no objects."""
    if not text.strip():
        return []
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Unavailable(f"{what} printed JSON that does not parse: {exc}")
    items = document if isinstance(document, list) else [document]
    return [item for item in items if isinstance(item, Mapping)]


# --- firewall ----------------------------------------------------------------------------------

# NetSecurity enums, in case ConvertTo-Json prints the numbers: GpoBoolean False=0, True=1,
# NotConfigured=2; Action NotConfigured=0, Allow=2, Block=4. NotConfigured means the Windows
# default, which is on and blocking.
_ENABLED = {"true": True, "1": True, "false": False, "0": False, "notconfigured": True, "2": True}
_BLOCKS = {"block": True, "4": True, "allow": False, "2": False, "notconfigured": True, "0": True}


def parse_firewall_profiles(text: str) -> FirewallFacts | Unavailable:
    """Get-NetFirewallProfile as JSON: Name, Enabled and DefaultInboundAction of each profile."""
    items = _json_objects(text, "Get-NetFirewallProfile")
    if isinstance(items, Unavailable):
        return items
    profiles = []
    for item in items:
        enabled = _ENABLED.get(str(item.get("Enabled")).lower())
        blocks = _BLOCKS.get(str(item.get("DefaultInboundAction")).lower())
        if enabled is None or blocks is None:
            return Unavailable(f"unexpected firewall profile values: {dict(item)}")
        profiles.append(FirewallProfile(str(item.get("Name", "?")), enabled, blocks))
    return _windows_firewall(tuple(profiles))


def parse_netsh_firewall(text: str) -> FirewallFacts | Unavailable:
    """`netsh advfirewall show allprofiles state` (English output): ON/OFF per profile."""
    profiles = []
    current: str | None = None
    for line in text.splitlines():
        header = re.match(r"^(\w+) Profile Settings:", line.strip())
        if header:
            current = header.group(1)
            continue
        state = re.match(r"^State\s+(ON|OFF)\b", line.strip(), re.IGNORECASE)
        if state and current is not None:
            # netsh's `state` view does not show the inbound action; Windows' default blocks.
            profiles.append(FirewallProfile(current, state.group(1).upper() == "ON", True))
            current = None
    return _windows_firewall(tuple(profiles))


def _windows_firewall(profiles: tuple[FirewallProfile, ...]) -> FirewallFacts | Unavailable:
    if not profiles:
        return Unavailable("no firewall profile found in the output")
    enabled = all(p.enabled for p in profiles)
    # Windows picks the profile by network at run time: each must be on and blocking.
    filters = all(p.enabled and p.blocks_inbound for p in profiles)
    words = []
    for p in profiles:
        state = "on" if p.enabled else "off"
        if p.enabled and not p.blocks_inbound:
            state += " (allows inbound)"
        words.append(f"{p.name} {state}")
    return FirewallFacts("Windows Firewall", enabled, filters, ", ".join(words), profiles)


def firewall() -> FirewallFacts | Unavailable:
    text = _powershell(FIREWALL_SCRIPT)
    if not isinstance(text, Unavailable):
        return parse_firewall_profiles(text)
    output = run_command(("netsh", "advfirewall", "show", "allprofiles", "state"), TOOL_TIMEOUT_S)
    if isinstance(output, Unavailable):
        return Unavailable(f"{text.reason}; {output.reason}")
    return parse_netsh_firewall(output.stdout)


# --- antivirus ---------------------------------------------------------------------------------


def decode_product_state(state: int) -> tuple[bool, bool]:
    """(enabled, definitions up to date) from Security Center's productState.

    Undocumented by Microsoft; the community decoding reads its hex digits: 0x0N1N00 is on,
    0x0N0N00 off (and 2 there "snoozed"), and 0x....10 means out-of-date definitions.
    """
    return (state >> 12) & 0xF == 1, (state >> 4) & 0xF == 0


def parse_security_center(text: str) -> tuple[AntivirusProduct, ...] | Unavailable:
    """root/SecurityCenter2 AntiVirusProduct as JSON: displayName and productState each."""
    items = _json_objects(text, "Security Center")
    if isinstance(items, Unavailable):
        return items
    products = []
    for item in items:
        try:
            state = int(str(item.get("productState")))
        except (TypeError, ValueError):
            return Unavailable(f"unexpected productState in {dict(item)}")
        enabled, up_to_date = decode_product_state(state)
        products.append(
            AntivirusProduct(
                str(item.get("displayName") or "unnamed product"),
                "Security Center",
                enabled,
                up_to_date,
                detail=f"productState 0x{state:06X}",
            )
        )
    return tuple(products)


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_powershell_date(value: Any) -> datetime | None:
    """Windows PowerShell 5.1 writes dates as "/Date(ms)/", PowerShell 7 as ISO 8601."""
    if not isinstance(value, str) or not value:
        return None
    match = _MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000.0, UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A date without an offset is the machine's local time.
    return parsed if parsed.tzinfo else parsed.astimezone(UTC)


NEVER_UPDATED_AGE = 65535
"""AntivirusSignatureAge when the signatures were never updated."""


def parse_defender_status(text: str, now: datetime) -> AntivirusProduct | Unavailable:
    """Get-MpComputerStatus as JSON: Defender on or off, and the age of its signatures."""
    items = _json_objects(text, "Get-MpComputerStatus")
    if isinstance(items, Unavailable):
        return items
    if not items:
        return Unavailable("Get-MpComputerStatus printed nothing")
    status = items[0]
    updated = parse_powershell_date(status.get("AntivirusSignatureLastUpdated"))
    raw_age = status.get("AntivirusSignatureAge")
    age: float | None = None
    up_to_date: bool | None = None
    if isinstance(raw_age, int) and not isinstance(raw_age, bool):
        if raw_age >= NEVER_UPDATED_AGE:
            up_to_date = False
        else:
            age = float(raw_age)
    if age is None and updated is not None and up_to_date is None:
        age = max(0.0, (now - updated).total_seconds() / DAY_SECONDS)
    enabled = status.get("AntivirusEnabled") is True and status.get("AMServiceEnabled") is not False
    realtime = status.get("RealTimeProtectionEnabled")
    detail = "real-time protection " + ("on" if realtime is True else "off")
    if up_to_date is False:
        detail += "; signatures never updated"
    return AntivirusProduct(
        "Microsoft Defender Antivirus",
        "Defender",
        enabled,
        up_to_date,
        definitions_updated=updated,
        definitions_age_days=age,
        version=str(status.get("AntivirusSignatureVersion") or ""),
        detail=detail,
    )


def combine_antivirus(
    security_center: tuple[AntivirusProduct, ...] | Unavailable,
    defender: AntivirusProduct | Unavailable,
) -> AntivirusFacts | Unavailable:
    """Security Center's list, with Defender's signature age added to its Defender entry.

    Windows Server has no Security Center: then Defender's own status is all there is, and the
    list is not known to be complete.
    """
    if isinstance(security_center, Unavailable):
        if isinstance(defender, Unavailable):
            return Unavailable(
                f"Security Center: {security_center.reason}; Defender: {defender.reason}"
            )
        return AntivirusFacts(
            (defender,), complete=False, looked_for=(f"Security Center: {security_center.reason}",)
        )
    products = []
    for product in security_center:
        if not isinstance(defender, Unavailable) and "defender" in product.name.lower():
            product = AntivirusProduct(
                product.name,
                product.source,
                product.enabled,
                product.up_to_date,
                defender.definitions_updated,
                defender.definitions_age_days,
                defender.version,
                f"{product.detail}; {defender.detail}",
            )
        products.append(product)
    looked_for = ["Security Center"]
    if isinstance(defender, Unavailable):
        looked_for.append(f"Defender: {defender.reason}")
    return AntivirusFacts(tuple(products), complete=True, looked_for=tuple(looked_for))


def antivirus(now: datetime) -> AntivirusFacts | Unavailable:
    center_text = _powershell(SECURITY_CENTER_SCRIPT)
    center = (
        center_text if isinstance(center_text, Unavailable) else parse_security_center(center_text)
    )
    defender_text = _powershell(DEFENDER_SCRIPT)
    defender = (
        defender_text
        if isinstance(defender_text, Unavailable)
        else parse_defender_status(defender_text, now)
    )
    return combine_antivirus(center, defender)


# --- BitLocker ---------------------------------------------------------------------------------

_CONVERSION = {
    "fully decrypted": EncryptionState.NOT_ENCRYPTED,
    "fully encrypted": EncryptionState.ENCRYPTED,
    "used space only encrypted": EncryptionState.ENCRYPTED,
    "encryption in progress": EncryptionState.ENCRYPTING,
    "encryption paused": EncryptionState.ENCRYPTION_PAUSED,
    "decryption in progress": EncryptionState.DECRYPTING,
    "decryption paused": EncryptionState.DECRYPTING,
}


def parse_manage_bde(text: str) -> VolumeEncryption | Unavailable:
    """`manage-bde -status C:` (English): conversion and protection status of one volume."""
    error = re.search(r"^ERROR:\s*(.+)$", text, re.MULTILINE)
    if error:
        return Unavailable(f"manage-bde: {error.group(1).strip()}")
    fields = dict(
        (key.strip().lower(), value.strip())
        for key, value in re.findall(r"^[ \t]+([A-Za-z ]+?):[ \t]+(\S.*)$", text, re.MULTILINE)
    )
    volume = re.search(r"^Volume ([A-Za-z]:)", text, re.MULTILINE)
    conversion = fields.get("conversion status", "")
    state = _CONVERSION.get(conversion.lower())
    if volume is None or state is None:
        return Unavailable("manage-bde printed no volume or no conversion status")
    protection = fields.get("protection status", "")
    percent_text = fields.get("percentage encrypted", "").rstrip("%").replace(",", ".")
    try:
        percent: float | None = float(percent_text)
    except ValueError:
        percent = None
    # "Protection Off" on an encrypted disk: BitLocker is suspended and the key lies in the clear.
    if state is EncryptionState.ENCRYPTED and protection.lower().startswith("protection off"):
        state = EncryptionState.SUSPENDED
    method = fields.get("encryption method", "")
    return VolumeEncryption(
        volume.group(1).upper(),
        volume.group(1).upper(),
        state,
        f"BitLocker {method}".strip() if state is not EncryptionState.NOT_ENCRYPTED else "",
        percent_encrypted=percent,
        detail=f"{conversion}, {protection}" if protection else conversion,
    )


def drive_of(path: str) -> str | None:
    match = re.match(r"^([A-Za-z]:)", path)
    return match.group(1).upper() if match else None


# manage-bde exits 0 on success and -1 (as an unsigned DWORD) with an "ERROR:" line, which says why.
_BDE_CODES = (0, 1, -1, 0xFFFFFFFF)


def disk_encryption(mountpoints: Sequence[str]) -> DiskEncryptionFacts | Unavailable:
    system = (os.environ.get("SYSTEMDRIVE") or "C:").upper()
    drives = [system]
    errors: list[str] = []
    for path in mountpoints:
        drive = drive_of(path)
        if drive is None:
            errors.append(f"{path}: not a drive letter path")
        elif drive not in drives:
            drives.append(drive)
    volumes: list[VolumeEncryption] = []
    for drive in drives:
        output = run_command(("manage-bde", "-status", drive), TOOL_TIMEOUT_S, _BDE_CODES)
        if isinstance(output, Unavailable):
            if drive == system:
                return output
            errors.append(f"{drive}: {output.reason}")
            continue
        found = parse_manage_bde(output.stdout)
        if isinstance(found, Unavailable):
            if drive == system:
                return found
            errors.append(f"{drive}: {found.reason}")
            continue
        volumes.append(
            VolumeEncryption(
                found.mountpoint,
                found.device,
                found.state,
                found.method,
                found.percent_encrypted,
                system=drive == system,
                detail=found.detail,
            )
        )
    return DiskEncryptionFacts(tuple(volumes), tuple(errors))
