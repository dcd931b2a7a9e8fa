"""macOS batteries parsed from recorded ioreg plists and system_profiler JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.facts.hardware import macos
from agent.facts.hardware.models import BatteriesFacts

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hardware" / "macos"


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_apple_silicon_uses_the_nominal_capacity_in_mah() -> None:
    (battery,) = macos.parse_ioreg(text("ioreg_apple_silicon.plist")).batteries
    assert (battery.full_capacity, battery.design_capacity) == (4031.0, 4382.0)
    assert battery.capacity_unit == "mAh"
    assert battery.wear_percent == pytest.approx(8.01, abs=0.01)
    assert battery.percent == 85.0  # CurrentCapacity / MaxCapacity, both percentages here
    assert battery.plugged is True
    assert battery.status == "Charging"
    assert battery.cycle_count == 231
    assert (battery.manufacturer, battery.model) == ("SMP", "bq40z651")


def test_intel_uses_max_capacity_in_mah() -> None:
    (battery,) = macos.parse_ioreg(text("ioreg_intel.plist")).batteries
    assert battery.full_capacity == 3412.0
    assert battery.wear_percent == pytest.approx(47.98, abs=0.01)
    assert battery.percent == pytest.approx(62.72, abs=0.01)
    assert battery.plugged is False
    assert battery.status == "Discharging"
    assert battery.cycle_count == 1087


def test_a_mac_without_battery_prints_nothing() -> None:
    assert macos.parse_ioreg("") == BatteriesFacts(())


def test_ioreg_output_that_is_not_a_plist_is_refused() -> None:
    with pytest.raises(ValueError):
        macos.parse_ioreg("ioreg: command failed")


def test_system_profiler_gives_the_health_as_a_percentage() -> None:
    (battery,) = macos.parse_system_profiler(text("system_profiler_power.json")).batteries
    assert battery.capacity_unit == "%"
    assert battery.health_percent == pytest.approx(88.0)
    assert battery.wear_percent == pytest.approx(12.0)
    assert battery.percent == 72.0
    assert battery.plugged is False
    assert battery.status == "Discharging"
    assert battery.cycle_count == 318


def test_system_profiler_without_battery_section_is_no_battery() -> None:
    only_ac = '{"SPPowerDataType": [{"_name": "sppower_information"}]}'
    assert macos.parse_system_profiler(only_ac) == BatteriesFacts(())


@pytest.mark.parametrize("bad", ["nope", "{}", '{"SPPowerDataType": 3}'])
def test_system_profiler_output_that_is_not_power_data_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        macos.parse_system_profiler(bad)
