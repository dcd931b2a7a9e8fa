"""SMART drive health through smartmontools' `smartctl --json`, on every OS that has it.

`smartctl --scan-open --json` lists the drives (and which could not be opened), then
`smartctl --json -a -d <type> <device>` reads each. smartctl's exit status is a bit mask: bits 0-1
mean the command itself failed, the higher bits describe the disk (failing, attributes past their
threshold, errors logged), so a nonzero status is usually an answer, not a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.facts.command import CommandOutput, run_command
from agent.facts.hardware.models import (
    SMART_BIT_BAD_COMMAND_LINE,
    SMART_BIT_OPEN_FAILED,
    SmartAttribute,
    SmartDrive,
    SmartFacts,
)
from agent.facts.models import Unavailable

CACHE_TTL_S = 600.0
"""SMART counters move over days; asking every ten minutes at most keeps smartctl off the CPU."""
TIMEOUT_S = 30.0
"""A drive waking from standby can take seconds to answer."""
MAX_DRIVES = 32
ALL_EXIT_CODES = range(256)
WINDOWS_SMARTCTL = os.path.join(
    os.environ.get("PROGRAMFILES", r"C:\Program Files"), "smartmontools", "bin", "smartctl.exe"
)

# ATA attribute ids (the de facto standard numbering every vendor shares for these).
ATA_REALLOCATED = 5
ATA_REPORTED_UNCORRECT = 187
ATA_PENDING = 197
ATA_OFFLINE_UNCORRECTABLE = 198

_LEADING_INT = re.compile(r"\s*(\d+)")


@dataclass(frozen=True)
class ScannedDevice:
    name: str
    type: str
    open_error: str | None = None


def parse_scan(text: str) -> list[ScannedDevice]:
    """The devices in `smartctl --scan-open --json` output; ValueError if it is not that."""
    data = _json_object(text)
    devices = data.get("devices", [])
    if not isinstance(devices, list):
        raise ValueError("smartctl scan output has no device list")
    found = []
    for device in devices:
        if not isinstance(device, dict) or not isinstance(device.get("name"), str):
            continue
        open_error = device.get("open_error")
        found.append(
            ScannedDevice(
                name=device["name"],
                type=str(device.get("type") or "auto"),
                open_error=str(open_error) if open_error else None,
            )
        )
    return found


def parse_device(text: str, exit_status: int | None = None, device: str = "") -> SmartDrive | str:
    """One drive from `smartctl --json -a` output, or why it could not be read.

    `exit_status` is the process exit code; the JSON's own smartctl.exit_status is used when it
    is None. `device` names the drive when the output does not (it has no device section when
    the drive could not be opened). ValueError if the text is not smartctl JSON at all.
    """
    data = _json_object(text)
    smartctl = _dict(data.get("smartctl"))
    status = exit_status if exit_status is not None else _int(smartctl.get("exit_status")) or 0
    name = str(_dict(data.get("device")).get("name") or device or "drive")
    if status & (SMART_BIT_BAD_COMMAND_LINE | SMART_BIT_OPEN_FAILED):
        return f"{name}: {_error_message(smartctl) or f'smartctl exited with {status}'}"
    smart_status = _dict(data.get("smart_status"))
    passed = smart_status.get("passed")
    protocol = str(_dict(data.get("device")).get("protocol") or "")
    nvme = _dict(data.get("nvme_smart_health_information_log"))
    attributes = _attributes(data)
    by_id = {a.id: a for a in attributes}
    uncorrectable = [
        by_id[i].raw for i in (ATA_OFFLINE_UNCORRECTABLE, ATA_REPORTED_UNCORRECT) if i in by_id
    ]
    if not attributes and not nvme and not isinstance(passed, bool):
        why = _error_message(smartctl) or "the drive reports no SMART data"
        return f"{name}: {why}"
    return SmartDrive(
        device=name,
        protocol=protocol,
        model=str(data.get("model_name") or data.get("scsi_model_name") or ""),
        serial=str(data.get("serial_number") or ""),
        firmware=str(data.get("firmware_version") or ""),
        capacity_bytes=_int(_dict(data.get("user_capacity")).get("bytes")),
        health_passed=passed if isinstance(passed, bool) else None,
        exit_status=status,
        temperature_celsius=_float(_dict(data.get("temperature")).get("current")),
        power_on_hours=_int(_dict(data.get("power_on_time")).get("hours")),
        reallocated_sectors=(
            by_id[ATA_REALLOCATED].raw
            if ATA_REALLOCATED in by_id
            else _int(data.get("scsi_grown_defect_list"))
        ),
        pending_sectors=by_id[ATA_PENDING].raw if ATA_PENDING in by_id else None,
        uncorrectable_errors=sum(uncorrectable) if uncorrectable else None,
        nvme_critical_warning=_int(nvme.get("critical_warning")),
        nvme_percentage_used=_int(nvme.get("percentage_used")),
        nvme_available_spare=_int(nvme.get("available_spare")),
        nvme_available_spare_threshold=_int(nvme.get("available_spare_threshold")),
        nvme_media_errors=_int(nvme.get("media_errors")),
        attributes=attributes,
    )


def _attributes(data: dict[str, Any]) -> tuple[SmartAttribute, ...]:
    table = _dict(data.get("ata_smart_attributes")).get("table")
    if not isinstance(table, list):
        return ()
    found = []
    for row in table:
        if not isinstance(row, dict) or _int(row.get("id")) is None:
            continue
        raw = _dict(row.get("raw"))
        found.append(
            SmartAttribute(
                id=int(row["id"]),
                name=str(row.get("name") or ""),
                value=_int(row.get("value")),
                worst=_int(row.get("worst")),
                threshold=_int(row.get("thresh")),
                raw=_raw_count(raw),
                prefailure=bool(_dict(row.get("flags")).get("prefailure")),
                when_failed=str(row.get("when_failed") or ""),
            )
        )
    return tuple(found)


def _raw_count(raw: dict[str, Any]) -> int:
    """The count in an attribute's raw value.

    Several vendors pack extra fields into the 48-bit raw value ("12 (Average 3)",
    "0 (2000 0)"), so the leading number of smartctl's own rendering is the count.
    """
    match = _LEADING_INT.match(str(raw.get("string", "")))
    if match:
        return int(match.group(1))
    return _int(raw.get("value")) or 0


def _error_message(smartctl: dict[str, Any]) -> str:
    messages = smartctl.get("messages")
    if not isinstance(messages, list):
        return ""
    texts = [
        str(m.get("string", "")).strip()
        for m in messages
        if isinstance(m, dict) and m.get("severity") in ("error", None)
    ]
    return "; ".join(t for t in texts if t)


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"smartctl output is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("smartctl output is not a JSON object")
    return data


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


Runner = Callable[[list[str]], CommandOutput | Unavailable]


def smartctl_program() -> str:
    """smartctl on PATH, or where its Windows installer puts it."""
    if sys.platform == "win32" and shutil.which("smartctl") is None:
        return WINDOWS_SMARTCTL
    return "smartctl"


def _run(argv: list[str]) -> CommandOutput | Unavailable:
    return run_command(argv, timeout_s=TIMEOUT_S, ok_codes=ALL_EXIT_CODES)


def read_smart() -> SmartFacts | Unavailable:
    """Every drive's SMART data, read through the smartctl installed here."""
    smartctl = smartctl_program()
    if shutil.which(smartctl) is None:
        return Unavailable("smartctl is not installed (install smartmontools to read disk health)")
    return scan_and_read(smartctl, _run)


def scan_and_read(smartctl: str, run: Runner) -> SmartFacts | Unavailable:
    """Scan for drives with `run`, then read each one's SMART data."""
    scanned = run([smartctl, "--scan-open", "--json"])
    if isinstance(scanned, Unavailable):
        return scanned
    try:
        devices = parse_scan(scanned.stdout)
    except ValueError as exc:
        return Unavailable(f"cannot list drives: {exc}")
    if not devices:
        return Unavailable("smartctl found no drive (none attached, or no permission to list them)")
    drives: list[SmartDrive] = []
    errors: list[str] = []
    for device in devices[:MAX_DRIVES]:
        if device.open_error:
            errors.append(f"{device.name}: {_explain(device.open_error)}")
            continue
        answer = run([smartctl, "--json", "-a", "-d", device.type, device.name])
        if isinstance(answer, Unavailable):
            errors.append(f"{device.name}: {answer.reason}")
            continue
        try:
            parsed = parse_device(answer.stdout, answer.returncode, device.name)
        except ValueError as exc:
            errors.append(f"{device.name}: {exc}")
            continue
        if isinstance(parsed, str):
            errors.append(_explain(parsed))
        else:
            drives.append(parsed)
    return SmartFacts(tuple(drives), tuple(errors))


def _explain(error: str) -> str:
    if "permission denied" in error.lower() or "operation not permitted" in error.lower():
        return f"{error} (reading SMART needs administrator rights)"
    return error
