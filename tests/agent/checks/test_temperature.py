"""sensors.temperature judged on recorded sensor readings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.temperature import SensorsTemperature
from agent.facts.hardware.models import FanReading, SensorsFacts, TemperatureReading
from agent.facts.models import Unavailable
from remdiag.vocabulary import CheckStatus

CHECK = SensorsTemperature()
DEFAULTS = CHECK.thresholds()


def cpu(celsius: float) -> TemperatureReading:
    return TemperatureReading("coretemp", "Package id 0", celsius, high=80.0, critical=100.0)


def nvme(celsius: float) -> TemperatureReading:
    return TemperatureReading("nvme", "Composite", celsius, high=74.85, critical=79.85)


def bare(celsius: float) -> TemperatureReading:
    return TemperatureReading("it8728", "temp3", celsius)


def sensors(*readings: TemperatureReading) -> SensorsFacts:
    return SensorsFacts(readings, (FanReading("thinkpad", "", 2900),))


def values(facts: SensorsFacts) -> dict[str, object]:
    return {v.name: v.value for v in CHECK.evaluate(facts, DEFAULTS).values}


RECORDED = [
    sensors(cpu(55), nvme(40)),  # OK
    sensors(cpu(55), nvme(76)),  # WARNING: the NVMe drive's own high mark
    sensors(cpu(101), nvme(40)),  # CRITICAL: the CPU's own critical mark
    sensors(bare(90)),  # WARNING: the configured fallback
    SensorsFacts(()),  # UNKNOWN
]


def test_normal_temperatures_are_ok_and_name_the_hottest() -> None:
    outcome = CHECK.evaluate(sensors(cpu(55), nvme(40)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "coretemp Package id 0 at 55 °C (hottest of 2; high 80 °C)"
    assert values(sensors(cpu(55), nvme(40))) == {
        "max_celsius": 55.0,
        "sensor": "coretemp Package id 0",
        "warning_celsius": 80.0,
        "critical_celsius": 100.0,
        "sensors": 2,
    }


def test_each_sensor_is_judged_by_its_own_marks() -> None:
    # 76 °C is fine for a CPU but above this NVMe drive's own high mark.
    outcome = CHECK.evaluate(sensors(cpu(76), nvme(76)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert (
        outcome.summary == "nvme Composite at 76 °C (warning: above its own high mark of 74.85 °C)"
    )


def test_above_the_critical_mark_is_critical() -> None:
    outcome = CHECK.evaluate(sensors(cpu(101), nvme(78)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "coretemp Package id 0 at 101 °C (critical: above its own critical mark of 100 °C); "
        "2 sensors too hot"
    )


def test_sensors_without_marks_use_the_configured_limits() -> None:
    warm = CHECK.evaluate(sensors(bare(90)), DEFAULTS)
    assert warm.status is CheckStatus.WARNING
    assert warm.summary.endswith("(warning: above the configured high mark of 85 °C)")
    hot = CHECK.evaluate(sensors(bare(96)), DEFAULTS)
    assert hot.status is CheckStatus.CRITICAL


def test_a_sensor_with_only_a_low_critical_mark_warns_from_it() -> None:
    acpi = TemperatureReading("acpitz", "", 72.0, critical=70.0)
    outcome = CHECK.evaluate(sensors(acpi), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("above its own critical mark of 70 °C)")
    assert values(sensors(acpi))["warning_celsius"] == 70.0


def test_the_sensors_own_marks_can_be_ignored() -> None:
    mine = CHECK.thresholds({"use_sensor_marks": False, "max_celsius_warning": 70})
    outcome = CHECK.evaluate(sensors(cpu(75)), mine)
    assert outcome.status is CheckStatus.WARNING
    assert "the configured high mark of 70 °C" in outcome.summary


def test_ignored_sensors_are_skipped() -> None:
    faulty = TemperatureReading("acpitz", "", 120.0, critical=100.0)
    policy = CHECK.thresholds({"ignore_sensors": ["ACPITZ"]})
    assert CHECK.evaluate(sensors(faulty, cpu(50)), policy).status is CheckStatus.OK
    only = CHECK.evaluate(sensors(faulty), policy)
    assert only.status is CheckStatus.UNKNOWN
    assert only.summary == "no temperature sensor to judge (all ignored by the policy)"


def test_no_sensor_is_unknown() -> None:
    outcome = CHECK.evaluate(SensorsFacts(()), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "no temperature sensor to judge (none on this machine)"


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "no temperature sensor found: virtual machines and containers have none"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_celsius_warning": 99},  # above critical (95)
        {"max_celsius_critical": 151},
        {"max_celsius_warning": -1},
        {"ignore_sensors": [""]},
        {"ignore_sensors": ["x"] * 33},
        {"max_temperature": 80},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
