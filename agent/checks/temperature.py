"""sensors.temperature: warns when a CPU, drive or other component runs too hot.

Each sensor is judged against its hardware's own "high" and "critical" marks where it reports
them (a CPU and an NVMe drive have very different safe limits); the configured limits apply to
sensors without marks of their own, or to all of them when `use_sensor_marks` is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.hardware.models import SensorsFacts, TemperatureReading
from agent.facts.models import Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

SensorName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TemperatureThresholds(Thresholds):
    max_celsius_warning: float = Field(default=85, ge=0, le=150)
    """For sensors without a "high" mark of their own."""
    max_celsius_critical: float = Field(default=95, ge=0, le=150)
    """For sensors without a "critical" mark of their own."""
    use_sensor_marks: bool = True
    """Judge each sensor against its own marks where it has them."""
    ignore_sensors: tuple[SensorName, ...] = Field(default=(), max_length=32)
    """Sensors to skip, matched case-insensitively against "chip label" (e.g. a faulty acpitz)."""

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_celsius_warning > self.max_celsius_critical:
            raise ValueError("max_celsius_warning must not exceed max_celsius_critical")
        return self


@dataclass(frozen=True)
class _Judged:
    reading: TemperatureReading
    warning: float
    critical: float
    own_marks: bool
    status: CheckStatus


class SensorsTemperature(Check[SensorsFacts, TemperatureThresholds]):
    id = "sensors.temperature"
    title = "Temperatures"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=2)
    remediation = (
        "The PC is running hot. Make sure its vents are not blocked (not on a bed or a lap), "
        "clean dust from the vents and fans, and close programs using a lot of CPU. If it keeps "
        "overheating, a fan may have failed: hand over to L2."
    )
    emits = (
        ValueSpec("max_celsius", "°C", "temperature of the hottest sensor at the worst status"),
        ValueSpec("sensor", "", 'that sensor, as "chip label"'),
        ValueSpec("warning_celsius", "°C", "the mark it was judged against for a warning"),
        ValueSpec("critical_celsius", "°C", "the mark it was judged against for critical"),
        ValueSpec("sensors", "count", "temperature sensors judged"),
    )
    thresholds_type = TemperatureThresholds

    def gather(
        self, source: FactSource, thresholds: TemperatureThresholds
    ) -> SensorsFacts | Unavailable:
        return source.sensors()

    def evaluate(self, facts: SensorsFacts, thresholds: TemperatureThresholds) -> Outcome:
        ignored = [name.lower() for name in thresholds.ignore_sensors]
        readings = [
            r for r in facts.temperatures if not any(skip in r.name.lower() for skip in ignored)
        ]
        if not readings:
            why = "all ignored by the policy" if facts.temperatures else "none on this machine"
            return Outcome(CheckStatus.UNKNOWN, f"no temperature sensor to judge ({why})")
        judged = [_judge(r, thresholds) for r in readings]
        worst = max(judged, key=lambda j: (j.status, j.reading.celsius))
        r = worst.reading
        summary = f"{r.name or 'sensor'} at {r.celsius:.0f} °C"
        whose = "its own" if worst.own_marks else "the configured"
        if worst.status is CheckStatus.OK:
            summary += f" (hottest of {len(judged)}; high {worst.warning:g} °C)"
        else:
            limit = worst.critical if worst.status is CheckStatus.CRITICAL else worst.warning
            mark = "critical" if worst.status is CheckStatus.CRITICAL else "high"
            summary += f" ({worst.status.label}: above {whose} {mark} mark of {limit:g} °C)"
            hot = sum(1 for j in judged if j.status is not CheckStatus.OK)
            if hot > 1:
                summary += f"; {hot} sensors too hot"
        values = (
            Measured("max_celsius", round(r.celsius, 1), "°C"),
            Measured("sensor", r.name, ""),
            Measured("warning_celsius", worst.warning, "°C"),
            Measured("critical_celsius", worst.critical, "°C"),
            Measured("sensors", len(judged), "count"),
        )
        return Outcome(worst.status, summary, values)


def _judge(reading: TemperatureReading, t: TemperatureThresholds) -> _Judged:
    own_high = reading.high if t.use_sensor_marks else None
    own_critical = reading.critical if t.use_sensor_marks else None
    critical_own = own_critical is not None
    critical = own_critical if own_critical is not None else t.max_celsius_critical
    warning_own = own_high is not None
    warning = own_high if own_high is not None else t.max_celsius_warning
    if warning > critical:
        # A sensor with only a critical mark (acpitz, say) below the configured warning: warn
        # from that mark rather than never.
        warning, warning_own = critical, critical_own
    status = grade_max(reading.celsius, warning, critical)
    own = critical_own if status is CheckStatus.CRITICAL else warning_own
    return _Judged(reading, warning, critical, own, status)
