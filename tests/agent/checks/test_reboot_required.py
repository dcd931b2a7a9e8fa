"""os.reboot_required judged on recorded reboot flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.reboot_required import RebootRequired
from agent.facts.models import Unavailable
from agent.facts.software.models import RebootFacts
from remdiag.vocabulary import CheckStatus

CHECK = RebootRequired()
DEFAULTS = CHECK.thresholds()
DAY = 86400.0

NONE = RebootFacts(required=False)
FLAGGED = RebootFacts(
    required=True,
    reasons=("/var/run/reboot-required exists",),
    packages=("linux-image-6.1.0-21-amd64", "libc6"),
    pending_seconds=0.5 * DAY,
)
LONG_PENDING = RebootFacts(
    required=True,
    reasons=("/var/run/reboot-required exists",),
    packages=tuple(f"pkg{i}" for i in range(8)),
    pending_seconds=9.25 * DAY,
)
WINDOWS = RebootFacts(
    required=True,
    reasons=("Windows Update is waiting for a restart (RebootRequired)",),
)
RECORDED = [NONE, FLAGGED, LONG_PENDING, WINDOWS]


def judged(facts: RebootFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_no_restart_pending_is_ok() -> None:
    outcome = judged(NONE)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "no restart pending"


def test_a_pending_restart_warns_with_the_reason_and_packages() -> None:
    outcome = judged(FLAGGED)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "restart pending for 0.5 days: /var/run/reboot-required exists; "
        "asked for by linux-image-6.1.0-21-amd64, libc6"
    )
    values = {v.name: v.value for v in outcome.values}
    assert values == {"reboot_required": "yes", "packages": 2, "pending_days": 0.5}


def test_a_restart_pending_for_over_a_week_is_critical() -> None:
    outcome = judged(LONG_PENDING)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("restart pending for 9.2 days (critical above 7 days)")
    assert outcome.summary.endswith("pkg0, pkg1, pkg2, pkg3, pkg4 and 3 more")


def test_without_a_date_a_pending_restart_stays_a_warning() -> None:
    outcome = judged(WINDOWS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "restart pending: Windows Update is waiting for a restart (RebootRequired)"
    )


def test_the_critical_age_is_configurable() -> None:
    assert judged(FLAGGED, {"max_pending_days_critical": 0.25}).status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "macOS keeps no pending-restart flag"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [{"max_pending_days_critical": -1}, {"max_pending_days_warning": 1}],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
