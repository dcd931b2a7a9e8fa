"""time.drift judged on recorded clock states."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.time_drift import TimeDrift
from agent.facts.models import Unavailable
from agent.facts.software.models import TimeSyncFacts
from remdiag.vocabulary import CheckStatus

CHECK = TimeDrift()
DEFAULTS = CHECK.thresholds()

CLOSE = TimeSyncFacts("chrony", True, offset_ms=0.012, ntp_enabled=True, server="192.0.2.123")
DRIFTING = TimeSyncFacts("chrony", True, offset_ms=2345.7, server="192.0.2.123")
FAR_OFF = TimeSyncFacts("w32tm", True, offset_ms=95000.0, server="time.windows.com")
UNSYNCED = TimeSyncFacts("kernel", False)
RECORDED = [CLOSE, DRIFTING, FAR_OFF, UNSYNCED]


def judged(facts: TimeSyncFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_a_close_clock_is_ok() -> None:
    outcome = judged(CLOSE)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "clock synchronised to 192.0.2.123, off by 0.0 ms (chrony)"
    values = {v.name: v.value for v in outcome.values}
    assert values == {"source": "chrony", "synchronized": "yes", "offset_ms": 0.012}


def test_seconds_off_warns() -> None:
    outcome = judged(DRIFTING)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("off by 2.3 s (chrony) (warning above 1.0 s)")


def test_minutes_off_is_critical() -> None:
    outcome = judged(FAR_OFF)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("off by 95.0 s (w32tm) (critical above 30.0 s)")


def test_not_synchronised_warns() -> None:
    outcome = judged(UNSYNCED)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "clock not synchronised (kernel)"


def test_not_synchronised_with_network_time_off_says_so() -> None:
    outcome = judged(TimeSyncFacts("timedatectl", False, ntp_enabled=False))
    assert outcome.summary == "clock not synchronised (timedatectl); network time is switched off"


def test_a_known_offset_on_an_unsynchronised_clock_still_warns() -> None:
    outcome = judged(TimeSyncFacts("chrony", False, offset_ms=3.0))
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.startswith("clock NOT synchronised")


def test_synchronised_without_an_offset_is_ok_and_says_so() -> None:
    outcome = judged(TimeSyncFacts("kernel", True))
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "clock synchronised (kernel; the offset is not exposed)"


def test_network_time_off_without_more_warns() -> None:
    outcome = judged(TimeSyncFacts("systemsetup", None, ntp_enabled=False))
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "network time is switched off (systemsetup)"


def test_neither_state_nor_offset_is_unknown() -> None:
    outcome = judged(TimeSyncFacts("systemsetup", None, ntp_enabled=True))
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == (
        "systemsetup tells neither whether the clock is synchronised nor its offset"
    )


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("w32tm is not installed"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: w32tm is not installed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_offset_ms_warning": 40000},  # above critical (30000)
        {"max_offset_ms_critical": -1},
        {"max_offset_ms": 100},  # unknown field
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
