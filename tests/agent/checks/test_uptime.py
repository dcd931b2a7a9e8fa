"""uptime.reboot_overdue judged on recorded uptimes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.uptime import RebootOverdue
from agent.facts.models import Unavailable, UptimeFacts
from remdiag.vocabulary import CheckStatus

DAY = 86400.0
CHECK = RebootOverdue()
DEFAULTS = CHECK.thresholds()


def up(days: float) -> UptimeFacts:
    now = 1_800_000_000.0
    return UptimeFacts(boot_time=now - days * DAY, uptime_seconds=days * DAY)


RECORDED = [up(2), up(16.2), up(45)]


def test_recent_restart_is_ok() -> None:
    outcome = CHECK.evaluate(up(2), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "up 2.0 days since the last restart"


def test_two_weeks_warns() -> None:
    outcome = CHECK.evaluate(up(16.2), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "up 16.2 days since the last restart (warning above 14 days)"


def test_over_a_month_is_critical() -> None:
    assert CHECK.evaluate(up(45), DEFAULTS).status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    assert CHECK.judge(Unavailable("no boot time"), DEFAULTS).status is CheckStatus.UNKNOWN


@pytest.mark.parametrize(
    "overrides",
    [{"max_uptime_days_warning": 31}, {"max_uptime_days_critical": -1}, {"days": 3}],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
