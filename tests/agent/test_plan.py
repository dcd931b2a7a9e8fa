"""agent/plan.py: precedence of defaults, local settings and the collector's policy."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agent.checks.registry import CHECKS
from agent.config import CheckSettings
from agent.plan import PlannedCheck, PolicyEntry, build_plan

DISK = "disk.free_space"
LISBON = "Europe/Lisbon"


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


def test_policy_cron_replaces_the_interval() -> None:
    local = {DISK: CheckSettings(interval_seconds=60)}
    policy = {DISK: PolicyEntry(cron="0 2 * * 0", timezone=LISBON)}
    plan = build_plan(CHECKS, local, policy)
    disk = planned(plan.checks, DISK)
    assert (disk.cron, disk.timezone) == ("0 2 * * 0", LISBON)
    assert disk.schedule == (0.0, "0 2 * * 0", LISBON)
    assert isinstance(disk.trigger(), CronTrigger)
    assert plan.problems == ()
    # Without cron, the interval decides; other checks are untouched by DISK's cron.
    memory = planned(plan.checks, "memory.pressure")
    assert memory.cron == "" and isinstance(memory.trigger(), IntervalTrigger)
    assert memory.schedule == (CHECKS["memory.pressure"].default_interval.total_seconds(), "", "")


def test_cron_without_timezone_is_read_in_utc() -> None:
    disk = planned(build_plan(CHECKS, {}, {DISK: PolicyEntry(cron="30 6 * * *")}).checks, DISK)
    fire = disk.trigger().get_next_fire_time(None, datetime(2025, 7, 1, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2025, 7, 1, 6, 30, tzinfo=UTC)


def test_bad_cron_or_timezone_is_refused_and_the_previous_schedule_stays() -> None:
    local = {DISK: CheckSettings(interval_seconds=60)}
    good = build_plan(CHECKS, local, {DISK: PolicyEntry(cron="0 2 * * *", timezone=LISBON)})
    for bad in (
        PolicyEntry(cron="0 2 * *", timezone=LISBON, thresholds={"max_used_percent_warning": 70}),
        PolicyEntry(cron="0 25 * * *", thresholds={"max_used_percent_warning": 70}),
        PolicyEntry(cron="0 2 * * 8", thresholds={"max_used_percent_warning": 70}),
        PolicyEntry(
            cron="0 2 * * *", timezone="Mars/Olympus", thresholds={"max_used_percent_warning": 70}
        ),
    ):
        plan = build_plan(CHECKS, local, {DISK: bad}, previous=good)
        disk = planned(plan.checks, DISK)
        assert disk.schedule == (0.0, "0 2 * * *", LISBON), bad
        # Only the schedule is refused: the thresholds of the same entry apply.
        assert disk.thresholds.max_used_percent_warning == 70  # type: ignore[attr-defined]
        assert len(plan.problems) == 1 and DISK in plan.problems[0], plan.problems
        # With nothing before it (say, a saved policy at start), the local interval stands.
        first = planned(build_plan(CHECKS, local, {DISK: bad}).checks, DISK)
        assert first.schedule == (60.0, "", "")


def test_crontab_weekdays_count_from_sunday() -> None:
    """APScheduler 3 counts 0 as Monday; a policy's 0 (or 7) is Sunday, as in crontab."""
    for cron in ("0 2 * * 0", "0 2 * * 7", "0 2 * * sun"):
        disk = planned(build_plan(CHECKS, {}, {DISK: PolicyEntry(cron=cron)}).checks, DISK)
        fire = disk.trigger().get_next_fire_time(None, datetime(2025, 6, 2, tzinfo=UTC))  # Monday
        assert fire.astimezone(UTC) == datetime(2025, 6, 8, 2, 0, tzinfo=UTC), cron


def fire_times(cron: str, start: datetime, count: int) -> list[datetime]:
    """The next `count` fire times in UTC, asked of the trigger as the scheduler asks it."""
    policy = {DISK: PolicyEntry(cron=cron, timezone=LISBON)}
    trigger = planned(build_plan(CHECKS, {}, policy).checks, DISK).trigger()
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while len(fires) < count:
        fires.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)
    return fires


def test_cron_in_lisbon_keeps_local_time_across_the_march_change() -> None:
    """Lisbon goes from WET (UTC+0) to WEST (UTC+1) at 01:00 UTC on Sunday 30 March 2025."""
    assert fire_times("0 9 * * *", datetime(2025, 3, 28, 12, tzinfo=UTC), 3) == [
        datetime(2025, 3, 29, 9, 0, tzinfo=UTC),  # 09:00 WET
        datetime(2025, 3, 30, 8, 0, tzinfo=UTC),  # 09:00 WEST
        datetime(2025, 3, 31, 8, 0, tzinfo=UTC),
    ]
    # 01:30 does not exist that night: APScheduler reads it with the offset before the change.
    assert fire_times("30 1 * * *", datetime(2025, 3, 29, 12, tzinfo=UTC), 2) == [
        datetime(2025, 3, 30, 1, 30, tzinfo=UTC),  # 02:30 WEST, once
        datetime(2025, 3, 31, 0, 30, tzinfo=UTC),  # 01:30 WEST
    ]


def test_cron_in_lisbon_keeps_local_time_across_the_october_change() -> None:
    """Lisbon goes back from WEST to WET at 01:00 UTC on Sunday 26 October 2025."""
    assert fire_times("0 9 * * *", datetime(2025, 10, 24, 12, tzinfo=UTC), 3) == [
        datetime(2025, 10, 25, 8, 0, tzinfo=UTC),  # 09:00 WEST
        datetime(2025, 10, 26, 9, 0, tzinfo=UTC),  # 09:00 WET
        datetime(2025, 10, 27, 9, 0, tzinfo=UTC),
    ]
    # 01:30 happens twice that night, and APScheduler fires at both.
    assert fire_times("30 1 * * *", datetime(2025, 10, 25, 12, tzinfo=UTC), 3) == [
        datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # 01:30 WEST
        datetime(2025, 10, 26, 1, 30, tzinfo=UTC),  # 01:30 WET
        datetime(2025, 10, 27, 1, 30, tzinfo=UTC),
    ]
