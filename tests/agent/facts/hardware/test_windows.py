"""Windows batteries parsed from recorded PowerShell (WMI) output."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.facts.hardware import windows
from agent.facts.hardware.models import BatteriesFacts

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hardware" / "windows"


def parse(name: str) -> BatteriesFacts:
    return windows.parse_batteries((FIXTURES / name).read_text(encoding="utf-8"))


def test_root_wmi_gives_capacities_charge_and_plug_state() -> None:
    (battery,) = parse("batteries.json").batteries
    assert battery.name == "ACPI\\PNP0C0A\\1_0"
    assert (battery.full_capacity, battery.design_capacity) == (36.48, 57.0)
    assert battery.capacity_unit == "Wh"
    assert battery.wear_percent == pytest.approx(36.0)
    assert battery.percent == 64.0
    assert battery.plugged is True
    assert battery.status == "Not charging"
    assert battery.cycle_count == 287
    assert (battery.manufacturer, battery.model) == ("SMP", "5B10W13975")


def test_win32_battery_alone_gives_charge_but_no_wear() -> None:
    (battery,) = parse("win32_only.json").batteries
    assert battery.name == "12345Hewlett-PackardPrimary"
    assert battery.percent == 91.0
    assert battery.plugged is False
    assert battery.status == "Discharging"
    assert battery.wear_percent is None


def test_no_battery_gives_none() -> None:
    assert parse("no_battery.json") == BatteriesFacts(())


def test_a_single_instance_given_as_a_bare_object_is_read() -> None:
    text = (
        '{"full": {"InstanceName": "B0", "FullChargedCapacity": 40000},'
        ' "static": {"InstanceName": "B0", "DesignedCapacity": 50000}}'
    )
    (battery,) = windows.parse_batteries(text).batteries
    assert battery.wear_percent == pytest.approx(20.0)


def test_empty_output_is_no_battery() -> None:
    assert windows.parse_batteries("") == BatteriesFacts(())


@pytest.mark.parametrize("text", ["oops", "[]"])
def test_output_that_is_not_the_script_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        windows.parse_batteries(text)


def test_the_script_asks_every_class_without_a_shell() -> None:
    argv = windows.POWERSHELL
    assert argv[0] == "powershell.exe" and argv[-2] == "-Command"
    for cls in ("BatteryFullChargedCapacity", "BatteryStaticData", "Win32_Battery"):
        assert cls in argv[-1]
