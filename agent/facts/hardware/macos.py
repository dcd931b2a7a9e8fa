"""macOS batteries: the AppleSmartBattery registry entry, system_profiler as a fallback.

`ioreg -rn AppleSmartBattery -a` prints the battery's registry properties as a plist (nothing on a
Mac without a battery). On Apple silicon CurrentCapacity/MaxCapacity are percentages and the mAh
figures are NominalChargeCapacity/AppleRawMaxCapacity; on Intel Macs MaxCapacity is in mAh.
`system_profiler SPPowerDataType -json` is slower and gives the health only as a percentage.
"""

from __future__ import annotations

import json
import plistlib
import re
from typing import Any

from agent.facts.command import run_command
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable

IOREG = ["ioreg", "-rn", "AppleSmartBattery", "-a"]
SYSTEM_PROFILER = ["system_profiler", "SPPowerDataType", "-json"]
TIMEOUT_S = 30.0
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%")


def parse_ioreg(text: str) -> BatteriesFacts:
    """Batteries from `ioreg -rn AppleSmartBattery -a`; ValueError if it is not a plist."""
    if not text.strip():
        return BatteriesFacts(())
    try:
        data = plistlib.loads(text.encode("utf-8"))
    except (plistlib.InvalidFileException, ValueError) as exc:
        raise ValueError(f"ioreg output is not a plist: {exc}") from exc
    entries = data if isinstance(data, list) else [data]
    batteries = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("BatteryInstalled") is False:
            continue
        batteries.append(_from_ioreg(entry, index))
    return BatteriesFacts(tuple(batteries))


def _from_ioreg(entry: dict[str, Any], index: int) -> BatteryFacts:
    current = _number(entry.get("CurrentCapacity"))
    maximum = _number(entry.get("MaxCapacity"))
    design = _number(entry.get("DesignCapacity"))
    if design is None:
        design = _number(_dict(entry.get("BatteryData")).get("DesignCapacity"))
    # What macOS itself shows as "Maximum Capacity" is the nominal (or raw) full charge in mAh;
    # MaxCapacity is only in mAh on Intel Macs, where it is above 100.
    full = _number(entry.get("NominalChargeCapacity")) or _number(entry.get("AppleRawMaxCapacity"))
    if full is None and maximum is not None and maximum > 100:
        full = maximum
    external = entry.get("ExternalConnected")
    plugged = external if isinstance(external, bool) else None
    if entry.get("IsCharging") is True:
        status = "Charging"
    elif entry.get("FullyCharged") is True:
        status = "Full"
    elif plugged:
        status = "Not charging"
    elif plugged is False:
        status = "Discharging"
    else:
        status = ""
    cycles = _number(entry.get("CycleCount"))
    return BatteryFacts(
        name=f"InternalBattery-{index}",
        percent=min(100.0, 100.0 * current / maximum) if current is not None and maximum else None,
        plugged=plugged,
        status=status,
        full_capacity=full,
        design_capacity=design,
        capacity_unit="mAh",
        cycle_count=int(cycles) if cycles is not None else None,
        manufacturer=str(entry.get("Manufacturer") or ""),
        model=str(entry.get("DeviceName") or ""),
    )


def parse_system_profiler(text: str) -> BatteriesFacts:
    """Batteries from `system_profiler SPPowerDataType -json`; ValueError if it is not that."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"system_profiler output is not JSON: {exc}") from exc
    sections = _dict(data).get("SPPowerDataType")
    if not isinstance(sections, list):
        raise ValueError("system_profiler output has no SPPowerDataType")
    plugged: bool | None = None
    battery: dict[str, Any] | None = None
    for section in sections:
        if not isinstance(section, dict):
            continue
        if section.get("_name") == "spbattery_information":
            battery = section
        connected = section.get("sppower_battery_charger_connected")
        if connected in ("TRUE", "FALSE"):
            plugged = connected == "TRUE"
    if battery is None:
        return BatteriesFacts(())
    charge = _dict(battery.get("sppower_battery_charge_info"))
    health = _dict(battery.get("sppower_battery_health_info"))
    model = _dict(battery.get("sppower_battery_model_info"))
    maximum = _PERCENT.match(str(health.get("sppower_battery_health_maximum_capacity", "")))
    cycles = _number(health.get("sppower_battery_cycle_count"))
    if charge.get("sppower_battery_is_charging") == "TRUE":
        status = "Charging"
    elif charge.get("sppower_battery_fully_charged") == "TRUE":
        status = "Full"
    else:
        status = {True: "Not charging", False: "Discharging", None: ""}[plugged]
    return BatteriesFacts(
        (
            BatteryFacts(
                name="InternalBattery-0",
                percent=_number(charge.get("sppower_battery_state_of_charge")),
                plugged=plugged,
                status=status,
                # Only the health is given, as a share of the design capacity.
                full_capacity=float(maximum.group(1)) if maximum else None,
                design_capacity=100.0 if maximum else None,
                capacity_unit="%",
                cycle_count=int(cycles) if cycles is not None else None,
                manufacturer=str(model.get("sppower_battery_manufacturer") or ""),
                model=str(model.get("sppower_battery_device_name") or ""),
            ),
        )
    )


def read_batteries() -> BatteriesFacts | Unavailable:
    done = run_command(IOREG, timeout_s=TIMEOUT_S)
    if not isinstance(done, Unavailable):
        try:
            found = parse_ioreg(done.stdout)
        except ValueError as exc:
            done = Unavailable(str(exc))
        else:
            return found if found.batteries else Unavailable(NO_BATTERY)
    # ioreg failed (sandboxed, or its output changed): ask system_profiler before giving up.
    profiled = run_command(SYSTEM_PROFILER, timeout_s=TIMEOUT_S)
    if isinstance(profiled, Unavailable):
        return Unavailable(f"{done.reason}; {profiled.reason}")
    try:
        found = parse_system_profiler(profiled.stdout)
    except ValueError as exc:
        return Unavailable(f"{done.reason}; {exc}")
    return found if found.batteries else Unavailable(NO_BATTERY)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
