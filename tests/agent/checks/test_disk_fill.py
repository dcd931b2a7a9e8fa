"""disk.fill_soon judged on recorded usage histories."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.disk_fill import DiskFillSoon
from agent.facts.hardware.models import DiskUsageHistoryFacts, DiskUsageSample, FilesystemHistory
from agent.facts.models import Unavailable
from remdiag.vocabulary import CheckStatus

GIB = 1024**3
HOUR = 3600.0
CHECK = DiskFillSoon()
DEFAULTS = CHECK.thresholds()
START = 1_700_000_000.0


def growing(
    mountpoint: str = "/",
    gib_per_day: float = 1.0,
    free_gib: float = 50.0,
    hours: float = 24.0,
    every_hours: float = 1.0,
    total_gib: float = 100.0,
) -> FilesystemHistory:
    """Hourly samples ending with `free_gib` free, after growing steadily at `gib_per_day`."""
    steps = int(hours / every_hours)
    samples = []
    for i in range(steps + 1):
        age_days = (steps - i) * every_hours / 24
        used = (total_gib - free_gib - gib_per_day * age_days) * GIB
        samples.append(
            DiskUsageSample(START + i * every_hours * HOUR, int(used), int(total_gib * GIB))
        )
    return FilesystemHistory(mountpoint, tuple(samples))


def history(*filesystems: FilesystemHistory, errors: tuple[str, ...] = ()) -> DiskUsageHistoryFacts:
    return DiskUsageHistoryFacts(filesystems, errors)


def values(outcome: object) -> dict[str, object]:
    return {v.name: v.value for v in outcome.values}  # type: ignore[attr-defined]


RECORDED = [
    history(growing(gib_per_day=1, free_gib=50)),  # OK: 50 days
    history(growing(gib_per_day=5, free_gib=50)),  # WARNING: 10 days
    history(growing(gib_per_day=24, free_gib=12)),  # CRITICAL: 12 hours
    history(growing(gib_per_day=-2)),  # OK: shrinking
    history(growing(hours=2)),  # UNKNOWN: not enough history
]


def test_slow_growth_is_ok_with_a_forecast() -> None:
    outcome = CHECK.evaluate(history(growing(gib_per_day=1, free_gib=50)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "/ fills at 1.00 GiB/day: full in about 50.0 days (50.0 GiB free)"
    got = values(outcome)
    assert got["days_until_full"] == pytest.approx(50, abs=0.01)
    assert got["fill_rate_gib_per_day"] == pytest.approx(1, abs=0.001)
    assert got["history_hours"] == 24.0
    assert got["filesystems"] == 1


def test_full_within_two_weeks_warns() -> None:
    outcome = CHECK.evaluate(history(growing(gib_per_day=5, free_gib=50)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith(
        "full in about 10.0 days (50.0 GiB free) (warning below 14 days)"
    )


def test_full_within_days_is_critical_and_says_hours() -> None:
    outcome = CHECK.evaluate(history(growing(gib_per_day=24, free_gib=12)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert "full in about 12 h" in outcome.summary
    assert outcome.summary.endswith("(critical below 3 days)")


def test_a_shrinking_filesystem_is_not_filling() -> None:
    outcome = CHECK.evaluate(history(growing(gib_per_day=-2)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "/ is not filling up (50.0 GiB free, 24 h of history)"
    assert "days_until_full" not in values(outcome)


def test_very_slow_growth_is_more_than_a_year() -> None:
    outcome = CHECK.evaluate(history(growing(gib_per_day=0.01)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert "full in more than a year" in outcome.summary


def test_one_burst_then_a_clean_up_is_not_a_trend() -> None:
    base = growing(gib_per_day=0, hours=24).samples
    burst = [
        DiskUsageSample(
            s.timestamp, s.used_bytes + (30 * GIB if 10 <= i < 14 else 0), s.total_bytes
        )
        for i, s in enumerate(base)
    ]
    outcome = CHECK.evaluate(history(FilesystemHistory("/", tuple(burst))), DEFAULTS)
    assert outcome.status is CheckStatus.OK


def test_only_the_window_counts() -> None:
    # Fast growth two days ago, flat since: with a 24 h window, nothing is filling.
    old = growing(gib_per_day=50, free_gib=60, hours=24).samples
    flat = tuple(
        DiskUsageSample(old[-1].timestamp + (i + 1) * HOUR, old[-1].used_bytes, old[-1].total_bytes)
        for i in range(30)
    )
    facts = history(FilesystemHistory("/", old + flat))
    assert CHECK.evaluate(facts, DEFAULTS).status is CheckStatus.WARNING  # 48 h window sees it
    narrow = CHECK.thresholds({"window_hours": 24})
    assert CHECK.evaluate(facts, narrow).status is CheckStatus.OK


def test_a_total_that_moves_with_a_pool_is_judged_on_free_space() -> None:
    # On ZFS or btrfs the total shrinks as other datasets grow: free space is what runs out.
    samples = tuple(
        DiskUsageSample(START + i * HOUR, 40 * GIB, int((100 - i) * GIB)) for i in range(25)
    )
    outcome = CHECK.evaluate(history(FilesystemHistory("/tank", samples)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert values(outcome)["fill_rate_gib_per_day"] == pytest.approx(24, abs=0.01)


def test_the_soonest_to_fill_is_named() -> None:
    outcome = CHECK.evaluate(
        history(
            growing("/", gib_per_day=1, free_gib=50),
            growing("/home", gib_per_day=1, free_gib=20),
        ),
        DEFAULTS,
    )
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.startswith("/home fills")
    assert values(outcome)["filesystems"] == 2


def test_the_worst_status_wins_over_the_soonest_at_ok() -> None:
    outcome = CHECK.evaluate(
        history(growing("/", gib_per_day=5, free_gib=50), growing("/data", gib_per_day=0)),
        DEFAULTS,
    )
    assert outcome.status is CheckStatus.WARNING
    assert values(outcome)["filesystem"] == "/"


def test_not_enough_history_is_unknown_and_says_how_much() -> None:
    outcome = CHECK.evaluate(history(growing(hours=2.5, every_hours=0.25)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "not enough history yet: 2.5 h of 6 h"
    assert values(outcome) == {"history_hours": 2.5}


def test_a_single_sample_is_not_enough() -> None:
    outcome = CHECK.evaluate(history(growing(hours=0)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "not enough history yet: 0.0 h of 6 h"


def test_filesystems_still_gathering_are_mentioned_beside_judged_ones() -> None:
    outcome = CHECK.evaluate(history(growing("/"), growing("/new", hours=1)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.endswith("; 1 more still gathering history")


def test_no_filesystem_is_unknown() -> None:
    outcome = CHECK.evaluate(history(), DEFAULTS)
    assert (outcome.status, outcome.summary) == (CheckStatus.UNKNOWN, "no filesystem found")


def test_an_unreadable_path_is_unknown_when_all_else_is_fine() -> None:
    outcome = CHECK.evaluate(history(growing(), errors=("/data: gone",)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.endswith("; could not read /data: gone")
    only_errors = CHECK.evaluate(history(errors=("/data: gone",)), DEFAULTS)
    assert only_errors.summary == "could not read /data: gone"


def test_an_unreadable_path_does_not_hide_a_filling_disk() -> None:
    facts = history(growing(gib_per_day=24, free_gib=12), errors=("/data: gone",))
    assert CHECK.evaluate(facts, DEFAULTS).status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot list filesystems: Permission denied"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: cannot list filesystems: Permission denied"


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_days_until_full_warning": 2},  # warning below critical (3)
        {"min_days_until_full_critical": -1},
        {"window_hours": 0},
        {"window_hours": 169},
        {"min_history_hours": 12, "window_hours": 6},
        {"min_history_hours": 0},
        {"paths": ["/"] * 33},
        {"max_days": 3},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
