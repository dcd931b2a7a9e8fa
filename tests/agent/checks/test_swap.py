"""memory.swap judged on recorded memory facts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.swap import MemorySwap
from agent.facts.models import MemoryFacts, Unavailable
from remdiag.vocabulary import CheckStatus

GIB = 1024**3
CHECK = MemorySwap()
DEFAULTS = CHECK.thresholds()


def memory(swap_total_gib: float, swap_percent: float) -> MemoryFacts:
    return MemoryFacts(
        total_bytes=16 * GIB,
        available_bytes=8 * GIB,
        used_percent=50.0,
        swap_total_bytes=int(swap_total_gib * GIB),
        swap_used_percent=swap_percent,
    )


RECORDED = [memory(4, 10), memory(4, 70), memory(2, 95), memory(0, 0)]


def test_little_swap_use_is_ok() -> None:
    outcome = CHECK.evaluate(memory(4, 10), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "swap 10% used (0.4 of 4.0 GiB)"
    assert {v.name: v.value for v in outcome.values} == {
        "swap_used_percent": 10.0,
        "swap_used_gib": 0.4,
        "swap_total_gib": 4.0,
    }


def test_heavy_swap_use_warns() -> None:
    outcome = CHECK.evaluate(memory(4, 70), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "swap 70% used (2.8 of 4.0 GiB) (warning above 60%)"


def test_nearly_full_swap_is_critical() -> None:
    outcome = CHECK.evaluate(memory(2, 95), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("(critical above 85%)")


def test_no_swap_is_ok_and_says_so() -> None:
    outcome = CHECK.evaluate(memory(0, 0), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "no swap configured: nothing to fill up"
    assert [(v.name, v.value) for v in outcome.values] == [("swap_total_gib", 0.0)]


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot read memory use: boom"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: cannot read memory use: boom"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_swap_used_percent_warning": 90},
        {"max_swap_used_percent_critical": 101},
        {"max_swap_used_percent_warning": -1},
        {"max_used_percent_warning": 80},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
