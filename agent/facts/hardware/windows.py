"""Windows batteries through WMI: root\\wmi battery classes, Win32_Battery as a fallback.

root\\wmi's BatteryStaticData.DesignedCapacity and BatteryFullChargedCapacity give the wear (both
in mWh), BatteryStatus the plug state; Win32_Battery is present everywhere but its capacities
are usually empty, so it only gives the charge and the plug state. One PowerShell run prints all
of them as one JSON object.
"""

from __future__ import annotations

import json
from typing import Any

from agent.facts.command import run_command
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable

TIMEOUT_S = 30.0
_CLASSES = {
    "full": (r"root\wmi", "BatteryFullChargedCapacity", "InstanceName,FullChargedCapacity"),
    "static": (
        r"root\wmi",
        "BatteryStaticData",
        "InstanceName,DesignedCapacity,DeviceName,ManufactureName",
    ),
    "status": (
        r"root\wmi",
        "BatteryStatus",
        "InstanceName,PowerOnline,Charging,Discharging,RemainingCapacity",
    ),
    "cycles": (r"root\wmi", "BatteryCycleCount", "InstanceName,CycleCount"),
    "win32": (
        r"root\cimv2",
        "Win32_Battery",
        "DeviceID,Name,EstimatedChargeRemaining,BatteryStatus,DesignCapacity,FullChargeCapacity",
    ),
}
# -InputObject keeps each list a list (piping would unroll a one-element array into an object);
# a class that does not exist on this machine yields an empty list instead of an error.
SCRIPT = (
    "$ErrorActionPreference = 'SilentlyContinue'; "
    + "ConvertTo-Json -Compress -Depth 3 -InputObject @{ "
    + "; ".join(
        f"'{key}' = @(Get-CimInstance -Namespace {namespace} -ClassName {cls} | "
        f"Select-Object -Property {properties})"
        for key, (namespace, cls, properties) in _CLASSES.items()
    )
    + " }"
)
POWERSHELL = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", SCRIPT]

# Win32_Battery.BatteryStatus: 1 discharging, 2 on AC, 3 fully charged, 4 low, 5 critical,
# 6-9 charging (high/low/critical), 10 undefined, 11 partially charged.
_WIN32_STATUS = {
    1: ("Discharging", False),
    2: ("On AC power", True),
    3: ("Full", True),
    4: ("Low", False),
    5: ("Critical", False),
    6: ("Charging", True),
    7: ("Charging", True),
    8: ("Charging", True),
    9: ("Charging", True),
    11: ("Partially charged", None),
}


def parse_batteries(text: str) -> BatteriesFacts:
    """Batteries from the SCRIPT's JSON; ValueError if it is not that JSON."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"PowerShell output is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("PowerShell output is not a JSON object")
    full = _by_instance(data.get("full"))
    static = _by_instance(data.get("static"))
    status = _by_instance(data.get("status"))
    cycles = _by_instance(data.get("cycles"))
    win32 = _rows(data.get("win32"))
    # Win32_Battery has no InstanceName to match with; with one battery (the usual case) its
    # charge and status belong to it.
    only_win32 = win32[0] if len(win32) == 1 else {}
    instances = list(dict.fromkeys([*static, *full]))
    batteries = []
    for instance in instances:
        st = status.get(instance, {})
        design = _number(static.get(instance, {}).get("DesignedCapacity"))
        full_mwh = _number(full.get(instance, {}).get("FullChargedCapacity"))
        remaining = _number(st.get("RemainingCapacity"))
        percent = _number(only_win32.get("EstimatedChargeRemaining"))
        if percent is None and remaining is not None and full_mwh:
            percent = min(100.0, 100.0 * remaining / full_mwh)
        plugged = st.get("PowerOnline") if isinstance(st.get("PowerOnline"), bool) else None
        word, win32_plugged = _win32_status(only_win32)
        cycle_count = _number(cycles.get(instance, {}).get("CycleCount"))
        batteries.append(
            BatteryFacts(
                name=instance,
                percent=percent,
                plugged=plugged if plugged is not None else win32_plugged,
                status=_status_word(st) or word,
                full_capacity=full_mwh / 1000 if full_mwh else None,
                design_capacity=design / 1000 if design else None,
                capacity_unit="Wh",
                cycle_count=int(cycle_count) if cycle_count else None,
                manufacturer=str(static.get(instance, {}).get("ManufactureName") or "").strip(),
                model=str(static.get(instance, {}).get("DeviceName") or "").strip(),
            )
        )
    if not batteries:
        batteries = [_from_win32(row) for row in win32]
    return BatteriesFacts(tuple(batteries))


def read_batteries() -> BatteriesFacts | Unavailable:
    done = run_command(POWERSHELL, timeout_s=TIMEOUT_S)
    if isinstance(done, Unavailable):
        return done
    try:
        found = parse_batteries(done.stdout)
    except ValueError as exc:
        return Unavailable(f"cannot read the batteries from WMI: {exc}")
    return found if found.batteries else Unavailable(NO_BATTERY)


def _from_win32(row: dict[str, Any]) -> BatteryFacts:
    word, plugged = _win32_status(row)
    design = _number(row.get("DesignCapacity"))
    full = _number(row.get("FullChargeCapacity"))
    return BatteryFacts(
        name=str(row.get("DeviceID") or row.get("Name") or "battery").strip(),
        percent=_number(row.get("EstimatedChargeRemaining")),
        plugged=plugged,
        status=word,
        full_capacity=full / 1000 if full else None,
        design_capacity=design / 1000 if design else None,
        capacity_unit="Wh",
        model=str(row.get("Name") or "").strip(),
    )


def _win32_status(row: dict[str, Any]) -> tuple[str, bool | None]:
    code = _number(row.get("BatteryStatus"))
    return _WIN32_STATUS.get(int(code), ("", None)) if code is not None else ("", None)


def _status_word(status: dict[str, Any]) -> str:
    if status.get("Charging") is True:
        return "Charging"
    if status.get("Discharging") is True:
        return "Discharging"
    if status.get("PowerOnline") is True:
        return "Not charging"
    return ""


def _rows(value: object) -> list[dict[str, Any]]:
    """A WMI class's instances; one instance may come as a bare object."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []


def _by_instance(value: object) -> dict[str, dict[str, Any]]:
    return {str(row["InstanceName"]): row for row in _rows(value) if row.get("InstanceName")}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
