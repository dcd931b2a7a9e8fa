"""service.down judged on recorded service lists."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.service_down import ServiceDown
from agent.facts.models import Unavailable
from agent.facts.software.models import ServicesFacts, ServiceState
from remdiag.vocabulary import CheckStatus

CHECK = ServiceDown()
DEFAULTS = CHECK.thresholds()


def up(name: str, display: str = "") -> ServiceState:
    return ServiceState(name, True, False, "active/running", display_name=display)


def stopped(name: str, display: str = "") -> ServiceState:
    return ServiceState(name, False, False, "inactive/dead", display_name=display)


def failed(name: str) -> ServiceState:
    return ServiceState(name, False, True, "failed/failed")


HEALTHY = ServicesFacts("systemd", (up("ssh"), up("cron"), stopped("cups")))
ONE_FAILED = ServicesFacts("systemd", (up("ssh"), failed("fwupd-refresh")))
MANY_FAILED = ServicesFacts("systemd", (up("ssh"), *(failed(f"broken{i}") for i in range(6))))
RECORDED = [HEALTHY, ONE_FAILED, MANY_FAILED]


def judged(facts: ServicesFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_nothing_failed_is_ok() -> None:
    outcome = judged(HEALTHY)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "no failed services among 3 (systemd)"
    values = {v.name: v.value for v in outcome.values}
    assert values == {"services_down": 0, "failed_services": 0, "services_total": 3}


def test_listed_services_running_is_ok() -> None:
    outcome = judged(HEALTHY, {"services": ["ssh.service", "CRON"]})
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "2 listed service(s) running; no failed services among 3 (systemd)"


def test_a_listed_service_not_running_is_critical() -> None:
    outcome = judged(HEALTHY, {"services": ["ssh", "cups"]})
    assert outcome.status is CheckStatus.CRITICAL
    assert (
        outcome.summary == "not running: cups (inactive/dead); no failed services among 3 (systemd)"
    )


def test_a_listed_service_that_does_not_exist_is_critical() -> None:
    outcome = judged(HEALTHY, {"services": ["nginx"]})
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("not running: nginx (not found)")


def test_a_failed_unlisted_service_warns() -> None:
    outcome = judged(ONE_FAILED)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "1 failed: fwupd-refresh"


def test_a_failed_listed_service_is_critical_and_not_counted_twice() -> None:
    outcome = judged(ONE_FAILED, {"services": ["fwupd-refresh"]})
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("not running: fwupd-refresh (failed/failed); no failed")
    assert {v.name: v.value for v in outcome.values}["failed_services"] == 0


def test_accepted_failures_are_ignored() -> None:
    outcome = judged(ONE_FAILED, {"ignore_failed": ["fwupd-refresh.service"]})
    assert outcome.status is CheckStatus.OK


def test_many_failed_services_are_critical() -> None:
    outcome = judged(MANY_FAILED)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "6 failed: broken0, broken1, broken2, broken3, broken4 and 1 more"


def test_windows_services_are_found_by_display_name_too() -> None:
    facts = ServicesFacts(
        "windows", (up("wuauserv", "Windows Update"), stopped("Spooler", "Print Spooler"))
    )
    outcome = judged(facts, {"services": ["windows update", "Print Spooler"]})
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("not running: Print Spooler (inactive/dead)")


def test_an_empty_service_list_is_unknown() -> None:
    outcome = judged(ServicesFacts("systemd", ()))
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "systemd listed no services"


def test_no_service_manager_is_unknown_with_the_reason() -> None:
    reason = "systemd is not running: /run/systemd/system does not exist"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"services": [""]},
        {"services": ["x"] * 65},
        {"ignore_failed": ["   "]},
        {"max_failed_services_warning": 6},  # above critical (5)
        {"max_failed_services_critical": -1},
        {"service": ["ssh"]},  # unknown field
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
