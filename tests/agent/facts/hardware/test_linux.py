"""/sys/class/power_supply parsed from recorded directories, and read for real on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.facts.hardware import linux
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hardware" / "power_supply"


def supplies(scenario: str) -> dict[str, dict[str, str]]:
    """A recorded power_supply directory as supply name -> file name -> text."""
    return {
        supply.name: {f.name: f.read_text(encoding="utf-8") for f in supply.iterdir()}
        for supply in (FIXTURES / scenario).iterdir()
    }


def test_a_laptop_reporting_energy_on_battery() -> None:
    (battery,) = linux.parse_power_supplies(supplies("laptop_energy")).batteries
    assert battery == BatteryFacts(
        name="BAT0",
        percent=76.0,
        plugged=False,
        status="Discharging",
        full_capacity=43.128,
        design_capacity=57.0,
        capacity_unit="Wh",
        cycle_count=412,
        manufacturer="SMP",
        model="5B10W13975",
    )
    assert battery.wear_percent == pytest.approx(24.34, abs=0.01)


def test_a_laptop_reporting_charge_while_charging_skips_the_mouse() -> None:
    (battery,) = linux.parse_power_supplies(supplies("laptop_charge")).batteries
    assert battery.name == "BAT1"
    assert (battery.full_capacity, battery.design_capacity) == (2898.0, 6300.0)
    assert battery.capacity_unit == "mAh"
    # No capacity file: the charge is worked out from charge_now / charge_full.
    assert battery.percent == pytest.approx(50.0)
    assert battery.plugged is True
    assert battery.status == "Charging"
    assert battery.cycle_count is None  # the driver reports 0: it does not count
    assert battery.wear_percent == pytest.approx(54.0)


def test_a_zero_design_capacity_leaves_the_wear_unknown_and_empty_bays_are_skipped() -> None:
    (battery,) = linux.parse_power_supplies(supplies("no_design")).batteries
    assert battery.name == "BAT0"
    assert battery.design_capacity is None
    assert battery.wear_percent is None
    assert battery.plugged is True
    assert battery.status == "Not charging"


def test_a_desktop_has_no_battery() -> None:
    assert linux.parse_power_supplies(supplies("desktop")) == BatteriesFacts(())


def test_without_an_adapter_the_status_word_says_whether_it_is_plugged() -> None:
    files = {"type": "Battery\n", "status": "Full\n", "capacity": "100\n"}
    battery = linux.parse_battery("BAT0", files)
    assert battery is not None and battery.plugged is True
    unknown = linux.parse_battery("BAT0", {**files, "status": "Unknown\n"})
    assert unknown is not None and unknown.plugged is None


def test_a_full_capacity_above_design_is_no_wear() -> None:
    files = {"type": "Battery", "energy_full": "58000000", "energy_full_design": "57000000"}
    battery = linux.parse_battery("BAT0", files)
    assert battery is not None
    assert battery.health_percent == pytest.approx(101.75, abs=0.01)
    assert battery.wear_percent == 0.0


def test_garbage_values_are_ignored() -> None:
    battery = linux.parse_battery("BAT0", {"type": "Battery", "capacity": "n/a"})
    assert battery == BatteryFacts(name="BAT0", capacity_unit="mAh")


def test_reading_a_recorded_tree_from_disk() -> None:
    found = linux.read_batteries(FIXTURES / "laptop_energy")
    assert isinstance(found, BatteriesFacts)
    assert [b.name for b in found.batteries] == ["BAT0"]


def test_reading_a_tree_without_battery_says_so() -> None:
    assert linux.read_batteries(FIXTURES / "desktop") == Unavailable(NO_BATTERY)


def test_a_missing_power_supply_class_is_unavailable(tmp_path: Path) -> None:
    found = linux.read_batteries(tmp_path / "missing")
    assert isinstance(found, Unavailable)
    assert "does not exist" in found.reason


@pytest.mark.skipif(not linux.POWER_SUPPLY_ROOT.exists(), reason="no /sys/class/power_supply")
def test_this_machine_has_plausible_batteries_or_says_why_not() -> None:
    found = linux.read_batteries()
    if isinstance(found, Unavailable):
        assert found.reason
        return
    for battery in found.batteries:
        assert battery.percent is None or 0 <= battery.percent <= 100
        assert battery.wear_percent is None or 0 <= battery.wear_percent <= 100
