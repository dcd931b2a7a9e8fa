"""agent/plan.py: precedence of defaults, local settings and the collector's policy."""

from __future__ import annotations

from agent.checks.registry import CHECKS
from agent.config import CheckSettings
from agent.plan import PlannedCheck, PolicyEntry, build_plan

DISK = "disk.free_space"


def planned(plan_checks: tuple[PlannedCheck, ...], check_id: str) -> PlannedCheck:
    return next(p for p in plan_checks if p.check.id == check_id)


def test_defaults_cover_every_registered_check() -> None:
    plan = build_plan(CHECKS, {})
    assert {p.check.id for p in plan.checks} == set(CHECKS)
    disk = planned(plan.checks, DISK)
    assert disk.interval_seconds == CHECKS[DISK].default_interval.total_seconds()
    assert disk.thresholds == CHECKS[DISK].thresholds()


def test_policy_beats_local_which_beats_defaults() -> None:
    local = {DISK: CheckSettings(interval_seconds=60, thresholds={"max_used_percent_warning": 50})}
    plan = build_plan(CHECKS, local)
    disk = planned(plan.checks, DISK)
    assert disk.interval_seconds == 60
    assert disk.thresholds.max_used_percent_warning == 50  # type: ignore[attr-defined]

    policy = {DISK: PolicyEntry(interval_seconds=30, thresholds={"max_used_percent_warning": 70})}
    disk = planned(build_plan(CHECKS, local, policy).checks, DISK)
    assert disk.interval_seconds == 30
    assert disk.thresholds.max_used_percent_warning == 70  # type: ignore[attr-defined]


def test_disabled_locally_or_by_policy_is_not_planned() -> None:
    plan = build_plan(CHECKS, {DISK: CheckSettings(enabled=False)})
    assert DISK not in {p.check.id for p in plan.checks}
    plan = build_plan(CHECKS, {}, {DISK: PolicyEntry(disabled=True)})
    assert DISK not in {p.check.id for p in plan.checks}


def test_invalid_policy_is_refused_with_a_reason_and_local_settings_stand() -> None:
    policy = {
        DISK: PolicyEntry(thresholds={"max_used_percent_warning": 200}),
        "no.such_check": PolicyEntry(),
    }
    plan = build_plan(CHECKS, {}, policy)
    disk = planned(plan.checks, DISK)
    assert disk.thresholds == CHECKS[DISK].thresholds()
    assert any("disk.free_space" in p and "max_used_percent_warning" in p for p in plan.problems)
    assert any("no.such_check" in p for p in plan.problems)


def test_implied_thresholds_fill_only_what_nobody_set() -> None:
    implied = {"network.dns": {"names": ["collector.example.test"]}}
    dns = planned(build_plan(CHECKS, {}, None, implied).checks, "network.dns")
    assert dns.thresholds.names == ("collector.example.test",)  # type: ignore[attr-defined]
    local = {"network.dns": CheckSettings(thresholds={"names": ["intranet.test"]})}
    dns = planned(build_plan(CHECKS, local, None, implied).checks, "network.dns")
    assert dns.thresholds.names == ("intranet.test",)  # type: ignore[attr-defined]
