"""memory.pressure judged on recorded memory facts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.memory import MemoryPressure
from agent.facts.models import MemoryFacts, Unavailable
from remdiag.vocabulary import CheckStatus

GIB = 1024**3
CHECK = MemoryPressure()
DEFAULTS = CHECK.thresholds()


def memory(used_percent: float, swap_total_gib: float = 0, swap_percent: float = 0) -> MemoryFacts:
    total = 16 * GIB
    return MemoryFacts(
        total_bytes=total,
        available_bytes=int(total * (100 - used_percent) / 100),
        used_percent=used_percent,
        swap_total_bytes=int(swap_total_gib * GIB),
        swap_used_percent=swap_percent,
    )


RECORDED = [memory(40, 4, 10), memory(93), memory(98.5, 4, 90), memory(20, 2, 85)]


def test_normal_use_is_ok() -> None:
    outcome = CHECK.evaluate(memory(40, 4, 10), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "memory 40.0% used, 9.6 GiB of 16.0 GiB available; swap 10% used"


def test_above_the_warning_limit_warns() -> None:
    outcome = CHECK.evaluate(memory(93), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("(warning above 90%)")


def test_above_the_critical_limit_is_critical() -> None:
    outcome = CHECK.evaluate(memory(98.5, 4, 90), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert "(critical above 97%)" in outcome.summary


def test_heavy_swap_use_is_reported_but_left_to_memory_swap() -> None:
    outcome = CHECK.evaluate(memory(20, 2, 85), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.endswith("swap 85% used")


def test_swap_is_not_judged_without_swap() -> None:
    outcome = CHECK.evaluate(memory(20, 0, 100), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert "swap" not in outcome.summary
    assert "swap_used_percent" not in {v.name for v in outcome.values}


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot read memory use: boom"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_used_percent_warning": 98},
        {"max_used_percent_critical": 120},
        {"max_used_percent_warning": -5},
        {"max_used": 80},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
