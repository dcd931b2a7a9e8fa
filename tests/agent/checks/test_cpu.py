"""cpu.sustained_load judged on recorded load averages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.cpu import CpuSustainedLoad
from agent.facts.models import CpuFacts, Unavailable
from remdiag.vocabulary import CheckStatus

CHECK = CpuSustainedLoad()
DEFAULTS = CHECK.thresholds()


def cpu(load_5m: float, cores: int = 4, percent: float = 50.0) -> CpuFacts:
    return CpuFacts(cores, cores // 2 or None, percent, load_5m, load_5m, load_5m / 2)


RECORDED = [cpu(2.0), cpu(8.0), cpu(16.0, percent=100.0)]


def test_normal_load_is_ok() -> None:
    outcome = CHECK.evaluate(cpu(2.0), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "5-minute load 0.50 per core on 4 cores, CPU 50% busy"


def test_load_is_judged_per_core() -> None:
    assert CHECK.evaluate(cpu(8.0, cores=4), DEFAULTS).status is CheckStatus.WARNING
    assert CHECK.evaluate(cpu(8.0, cores=8), DEFAULTS).status is CheckStatus.OK


def test_above_the_critical_limit_is_critical() -> None:
    outcome = CHECK.evaluate(cpu(16.0, percent=100.0), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("(critical above 3 per core)")


def test_unknown_core_count_is_unknown() -> None:
    assert CHECK.evaluate(cpu(1.0, cores=0), DEFAULTS).status is CheckStatus.UNKNOWN


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot count the CPU cores"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert "cannot count the CPU cores" in outcome.summary


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_load_per_core_warning": 4.0},
        {"max_load_per_core_critical": -1},
        {"max_load_warning": 1},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
