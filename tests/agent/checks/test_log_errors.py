"""log.error_burst judged on recorded error counts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.log_errors import LogErrorBurst
from agent.facts.models import Unavailable
from agent.facts.software.models import LogErrorsFacts
from remdiag.vocabulary import CheckStatus

CHECK = LogErrorBurst()
DEFAULTS = CHECK.thresholds()


def errors(count: int, source: str = "journald", truncated: bool = False) -> LogErrorsFacts:
    return LogErrorsFacts(source, count, 3600.0, truncated)


RECORDED = [errors(3), errors(120), errors(5000, truncated=True)]


def judged(facts: LogErrorsFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_a_few_errors_are_ok() -> None:
    outcome = judged(errors(3))
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "3 errors in the system log in the last hour (journald)"
    assert {v.name: v.value for v in outcome.values} == {
        "errors_last_hour": 3,
        "source": "journald",
    }


def test_a_burst_warns() -> None:
    outcome = judged(errors(120, "windows-system-log"))
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "120 errors in the system log in the last hour (windows-system-log) "
        "(warning above 50 per hour)"
    )


def test_a_flood_past_the_counting_bound_is_critical_and_says_at_least() -> None:
    outcome = judged(errors(5000, truncated=True))
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("at least 5000 errors")
    assert outcome.summary.endswith("(critical above 500 per hour)")


def test_limits_are_inclusive() -> None:
    assert judged(errors(50)).status is CheckStatus.OK
    assert judged(errors(0), {"max_errors_per_hour_warning": 0}).status is CheckStatus.OK


def test_an_empty_window_is_unknown() -> None:
    outcome = judged(LogErrorsFacts("journald", 0, 0.0))
    assert outcome.status is CheckStatus.UNKNOWN


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "no readable system log: journald keeps no journal files here"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_errors_per_hour_warning": 600},  # above critical (500)
        {"max_errors_per_hour_critical": 5001},  # beyond what is counted
        {"max_errors_per_hour_warning": -1},
        {"max_errors": 10},  # unknown field
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
