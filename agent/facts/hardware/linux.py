"""Linux hardware facts the kernel exposes as files: batteries in /sys/class/power_supply.

Each supply is a directory of one-value files (type, status, capacity, energy_full, ...; see the
kernel's Documentation/ABI/testing/sysfs-class-power). The parser takes those files as a dict of
name -> text, so recorded directories test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from agent.facts.command import read_text
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable

POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")
SUPPLY_FILES = (
    "type",
    "scope",
    "present",
    "online",
    "status",
    "capacity",
    "energy_now",
    "energy_full",
    "energy_full_design",
    "charge_now",
    "charge_full",
    "charge_full_design",
    "cycle_count",
    "manufacturer",
    "model_name",
)
MAX_SUPPLIES = 32

# Battery status words that mean the charger is connected.
_PLUGGED_STATUS = {"charging": True, "full": True, "not charging": True, "discharging": False}


def parse_battery(name: str, files: Mapping[str, str]) -> BatteryFacts | None:
    """The battery one supply directory describes; None if it is not the machine's own battery.

    `files` maps file name to its text; missing files are simply absent.
    """
    values = {key: text.strip() for key, text in files.items()}
    if values.get("type", "").lower() != "battery":
        return None
    # scope=Device is a peripheral's battery (a wireless mouse or keyboard), not the PC's.
    if values.get("scope", "").lower() == "device" or values.get("present") == "0":
        return None
    # energy_* is in µWh, charge_* in µAh; drivers expose one family or the other.
    if _number(values.get("energy_full_design")) or _number(values.get("energy_full")):
        prefix, scale, unit = "energy", 1e-6, "Wh"
    else:
        prefix, scale, unit = "charge", 1e-3, "mAh"
    full = _number(values.get(f"{prefix}_full"))
    design = _number(values.get(f"{prefix}_full_design"))
    now = _number(values.get(f"{prefix}_now"))
    percent = _number(values.get("capacity"))
    if percent is None and now is not None and full:
        percent = min(100.0, 100.0 * now / full)
    status = values.get("status", "")
    cycles = _number(values.get("cycle_count"))
    return BatteryFacts(
        name=name,
        percent=percent,
        plugged=_PLUGGED_STATUS.get(status.lower()),
        status=status,
        full_capacity=round(full * scale, 3) if full else None,
        design_capacity=round(design * scale, 3) if design else None,
        capacity_unit=unit,
        # Drivers that do not count cycles report 0.
        cycle_count=int(cycles) if cycles else None,
        manufacturer=values.get("manufacturer", ""),
        model=values.get("model_name", ""),
    )


def parse_power_supplies(supplies: Mapping[str, Mapping[str, str]]) -> BatteriesFacts:
    """Every system battery among the supplies (name -> files), with the plug state.

    A mains adapter's `online` says whether the machine is plugged in; without one, the
    battery's own status word decides.
    """
    adapters = [
        files.get("online", "").strip() == "1"
        for files in supplies.values()
        if files.get("type", "").strip().lower() == "mains" and "online" in files
    ]
    plugged = any(adapters) if adapters else None
    batteries = []
    for name in sorted(supplies):
        battery = parse_battery(name, supplies[name])
        if battery is None:
            continue
        if plugged is not None:
            battery = replace(battery, plugged=plugged)
        batteries.append(battery)
    return BatteriesFacts(tuple(batteries))


def read_batteries(root: Path = POWER_SUPPLY_ROOT) -> BatteriesFacts | Unavailable:
    """The batteries under `root`; Unavailable saying so when there is none."""
    try:
        entries = sorted(root.iterdir())[:MAX_SUPPLIES]
    except FileNotFoundError:
        return Unavailable(f"{root} does not exist: the kernel exposes no power supplies")
    except OSError as exc:
        return Unavailable(f"cannot list {root}: {exc.strerror or exc}")
    supplies: dict[str, dict[str, str]] = {}
    for entry in entries:
        files = {}
        for file_name in SUPPLY_FILES:
            text = read_text(entry / file_name, limit=4096)
            # A missing file is normal (drivers expose different sets); so is EIO from a
            # battery that is being removed or a firmware that refuses one value.
            if not isinstance(text, Unavailable):
                files[file_name] = text
        supplies[entry.name] = files
    found = parse_power_supplies(supplies)
    if not found.batteries:
        return Unavailable(NO_BATTERY)
    return found


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None
