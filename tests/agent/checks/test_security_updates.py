"""updates.security_pending judged on recorded package-manager answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.security_updates import SecurityUpdatesPending
from agent.facts.models import Unavailable
from agent.facts.software.models import PendingUpdate, UpdatesFacts
from remdiag.vocabulary import CheckStatus

CHECK = SecurityUpdatesPending()
DEFAULTS = CHECK.thresholds()
DAY = 86400.0


def updates(
    plain: int = 0,
    security: int = 0,
    manager: str = "apt",
    known: bool = True,
    age_days: float | None = 1.0,
) -> UpdatesFacts:
    found = [PendingUpdate(f"lib{i}", "2.0", "1.0") for i in range(plain)]
    found += [PendingUpdate(f"sec{i}", "2.0", "1.0", security=True) for i in range(security)]
    age = None if age_days is None else age_days * DAY
    return UpdatesFacts(manager, tuple(found), security_known=known, lists_age_seconds=age)


UP_TO_DATE = updates()
SOME_PLAIN = updates(plain=3)
ONE_SECURITY = updates(plain=2, security=1)
MANY_SECURITY = updates(plain=5, security=12)
RECORDED = [UP_TO_DATE, SOME_PLAIN, ONE_SECURITY, MANY_SECURITY]


def judged(facts: UpdatesFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_up_to_date_is_ok() -> None:
    outcome = judged(UP_TO_DATE)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "0 updates pending, 0 of them security (apt)"
    values = {v.name: v.value for v in outcome.values}
    assert values == {
        "pending_updates": 0,
        "security_updates": 0,
        "manager": "apt",
        "lists_age_days": 1.0,
    }


def test_a_few_ordinary_updates_are_ok() -> None:
    assert judged(SOME_PLAIN).status is CheckStatus.OK


def test_any_security_update_warns_and_names_it() -> None:
    outcome = judged(ONE_SECURITY)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "3 updates pending, 1 of them security (apt) (warning: more than 0 security updates: sec0)"
    )


def test_many_security_updates_are_critical() -> None:
    outcome = judged(MANY_SECURITY)
    assert outcome.status is CheckStatus.CRITICAL
    assert "more than 10 security updates: sec0, sec1, sec2, sec3, sec4 and 7 more" in (
        outcome.summary
    )


def test_a_long_backlog_of_updates_warns() -> None:
    outcome = judged(updates(plain=51))
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("(warning: more than 50 updates)")


def test_stale_package_lists_warn_that_more_may_be_missing() -> None:
    outcome = judged(updates(age_days=45))
    assert outcome.status is CheckStatus.WARNING
    assert "package lists not refreshed for 45 days (above 30)" in outcome.summary


def test_a_source_that_does_not_tell_security_judges_the_count_only() -> None:
    facts = updates(plain=2, manager="macos-softwareupdate", known=False, age_days=None)
    outcome = judged(facts)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "2 updates pending (macos-softwareupdate; it does not say which fix security problems)"
    )
    assert "security_updates" not in {v.name for v in outcome.values}


def test_a_policy_can_tolerate_some_security_updates() -> None:
    relaxed: dict[str, object] = {
        "max_security_updates_warning": 2,
        "max_security_updates_critical": 20,
    }
    assert judged(ONE_SECURITY, relaxed).status is CheckStatus.OK


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "no supported package manager with local lists (apt, dnf) found"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_security_updates_warning": 11},  # above critical (10)
        {"max_security_updates_critical": -1},
        {"max_pending_updates_warning": -1},
        {"max_lists_age_days_warning": -1},
        {"max_security_updates": 1},  # unknown field
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
