"""battery.wear judged on recorded batteries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.battery import BatteryWear
from agent.facts.hardware.models import NO_BATTERY, BatteriesFacts, BatteryFacts
from agent.facts.models import Unavailable
from remdiag.vocabulary import CheckStatus

CHECK = BatteryWear()
DEFAULTS = CHECK.thresholds()


def battery(
    full: float | None = 50.0,
    design: float | None = 57.0,
    name: str = "BAT0",
    unit: str = "Wh",
    percent: float | None = 80.0,
    plugged: bool | None = True,
    cycles: int | None = 300,
) -> BatteryFacts:
    return BatteryFacts(
        name=name,
        percent=percent,
        plugged=plugged,
        status="Charging" if plugged else "Discharging",
        full_capacity=full,
        design_capacity=design,
        capacity_unit=unit,
        cycle_count=cycles,
    )


def batteries(*found: BatteryFacts) -> BatteriesFacts:
    return BatteriesFacts(found)


RECORDED = [
    batteries(battery(50.0)),  # OK: 12% worn
    batteries(battery(36.48)),  # WARNING: 36% worn
    batteries(battery(2898, 6300, unit="mAh")),  # CRITICAL: 54% worn
    batteries(battery(design=None)),  # UNKNOWN
    batteries(),  # UNKNOWN: no battery
]


def test_a_healthy_battery_is_ok() -> None:
    outcome = CHECK.evaluate(batteries(battery(50.0)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "BAT0 worn 12% (holds 50.0 of 57.0 Wh), charge 80%, plugged in, 300 cycles"
    )
    assert {v.name: v.value for v in outcome.values} == {
        "wear_percent": 12.3,
        "health_percent": 87.7,
        "charge_percent": 80.0,
        "plugged_in": "yes",
        "cycle_count": 300,
        "batteries": 1,
    }


def test_a_worn_battery_warns() -> None:
    outcome = CHECK.evaluate(batteries(battery(36.48, plugged=False)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "BAT0 worn 36% (holds 36.5 of 57.0 Wh), charge 80%, on battery, 300 cycles "
        "(warning above 30% wear)"
    )


def test_a_spent_battery_is_critical() -> None:
    outcome = CHECK.evaluate(batteries(battery(2898, 6300, unit="mAh")), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert "(holds 2898 of 6300 mAh)" in outcome.summary
    assert outcome.summary.endswith("(critical above 50% wear)")


def test_health_given_only_as_a_percentage_is_judged() -> None:
    outcome = CHECK.evaluate(batteries(battery(88, 100, unit="%", cycles=None)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "BAT0 worn 12%, charge 80%, plugged in"


def test_the_most_worn_of_two_batteries_is_judged() -> None:
    outcome = CHECK.evaluate(
        batteries(battery(50.0, name="BAT0"), battery(20.0, name="BAT1")), DEFAULTS
    )
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("BAT1 worn 65%")
    assert {v.name: v.value for v in outcome.values}["batteries"] == 2


def test_a_battery_without_design_capacity_is_unknown_but_shows_its_charge() -> None:
    outcome = CHECK.evaluate(batteries(battery(design=None)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == (
        "BAT0 does not report its design capacity, so its wear is unknown, "
        "charge 80%, plugged in, 300 cycles"
    )
    assert {v.name for v in outcome.values} == {"charge_percent", "plugged_in", "cycle_count"}


def test_no_battery_is_unknown_and_says_so() -> None:
    outcome = CHECK.evaluate(batteries(), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == NO_BATTERY
    assert outcome.summary.startswith("no battery")
    gathered = CHECK.judge(Unavailable(NO_BATTERY), DEFAULTS)
    assert gathered.status is CheckStatus.UNKNOWN
    assert gathered.summary == f"could not measure: {NO_BATTERY}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_wear_percent_warning": 60},
        {"max_wear_percent_critical": 101},
        {"max_wear_percent_warning": -1},
        {"min_health_percent": 70},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
