"""battery.wear: warns when a laptop battery holds much less than it did new.

A worn battery is why "the laptop dies after an hour" tickets come in; the wear is the full-charge
capacity compared with the design capacity, both as the battery itself reports them. A machine
without a battery (desktop, server, virtual machine) is UNKNOWN with "no battery": there is
nothing to judge, and that is not a fault.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class BatteryWearThresholds(Thresholds):
    max_wear_percent_warning: float = Field(default=30, ge=0, le=100)
    """Capacity lost since new; at 30% a full charge lasts about two thirds as long."""
    max_wear_percent_critical: float = Field(default=50, ge=0, le=100)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_wear_percent_warning > self.max_wear_percent_critical:
            raise ValueError("max_wear_percent_warning must not exceed max_wear_percent_critical")
        return self


class BatteryWear(Check[BatteriesFacts, BatteryWearThresholds]):
    id = "battery.wear"
    title = "Battery wear"
    category = Category.HARDWARE
    default_interval = timedelta(hours=6)
    remediation = (
        "The battery has lost much of its capacity, so the laptop runs out sooner. Tell the user "
        "to keep it plugged in when possible and plan a battery replacement (L2 orders the part)."
    )
    emits = (
        ValueSpec("wear_percent", "%", "capacity lost since new, of the most worn battery"),
        ValueSpec("health_percent", "%", "full-charge capacity as a share of design capacity"),
        ValueSpec("charge_percent", "%", "its charge now"),
        ValueSpec("plugged_in", "", '"yes" or "no": whether the machine is on mains power'),
        ValueSpec("cycle_count", "count", "charge cycles it has been through"),
        ValueSpec("batteries", "count", "batteries whose wear could be judged"),
    )
    thresholds_type = BatteryWearThresholds

    def gather(
        self, source: FactSource, thresholds: BatteryWearThresholds
    ) -> BatteriesFacts | Unavailable:
        return source.batteries()

    def evaluate(self, facts: BatteriesFacts, thresholds: BatteryWearThresholds) -> Outcome:
        t = thresholds
        if not facts.batteries:
            return Outcome(CheckStatus.UNKNOWN, NO_BATTERY)
        judged = [(b, wear) for b in facts.batteries if (wear := b.wear_percent) is not None]
        if not judged:
            battery = facts.batteries[0]
            summary = (
                f"{battery.name} does not report its design capacity, so its wear is unknown"
                f"{_state(battery)}"
            )
            return Outcome(CheckStatus.UNKNOWN, summary, _live_values(battery))
        battery, wear = max(judged, key=lambda j: j[1])
        status = grade_max(wear, t.max_wear_percent_warning, t.max_wear_percent_critical)
        summary = f"{battery.name} worn {wear:.0f}%{_capacities(battery)}{_state(battery)}"
        if status is not CheckStatus.OK:
            limit = (
                t.max_wear_percent_critical
                if status is CheckStatus.CRITICAL
                else t.max_wear_percent_warning
            )
            summary += f" ({status.label} above {limit:g}% wear)"
        health = battery.health_percent
        values = [Measured("wear_percent", round(wear, 1), "%")]
        if health is not None:
            values.append(Measured("health_percent", round(health, 1), "%"))
        values.extend(_live_values(battery))
        values.append(Measured("batteries", len(judged), "count"))
        return Outcome(status, summary, tuple(values))


def _capacities(battery: BatteryFacts) -> str:
    full, design, unit = battery.full_capacity, battery.design_capacity, battery.capacity_unit
    if unit == "%" or full is None or design is None:
        return ""
    # Wh to one decimal, mAh (and anything else) in whole units.
    digits = 1 if unit == "Wh" else 0
    return f" (holds {full:.{digits}f} of {design:.{digits}f} {unit})"


def _state(battery: BatteryFacts) -> str:
    parts = []
    if battery.percent is not None:
        parts.append(f"charge {battery.percent:.0f}%")
    if battery.plugged is not None:
        parts.append("plugged in" if battery.plugged else "on battery")
    if battery.cycle_count is not None:
        parts.append(f"{battery.cycle_count} cycles")
    return f", {', '.join(parts)}" if parts else ""


def _live_values(battery: BatteryFacts) -> tuple[Measured, ...]:
    values = []
    if battery.percent is not None:
        values.append(Measured("charge_percent", round(battery.percent, 1), "%"))
    if battery.plugged is not None:
        values.append(Measured("plugged_in", "yes" if battery.plugged else "no", ""))
    if battery.cycle_count is not None:
        values.append(Measured("cycle_count", battery.cycle_count, "count"))
    return tuple(values)
