"""disk.free_space judged on recorded filesystems."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.disk import DiskFreeSpace
from agent.facts.models import DisksFacts, FilesystemFacts, Unavailable
from remdiag.vocabulary import CheckStatus

GIB = 1024**3
CHECK = DiskFreeSpace()
DEFAULTS = CHECK.thresholds()


def fs(path: str = "/", total_gib: float = 100, free_gib: float = 50) -> FilesystemFacts:
    used = 100.0 * (total_gib - free_gib) / total_gib if total_gib else 0.0
    return FilesystemFacts(
        path=path,
        mountpoint=path,
        device="/dev/sda1",
        fstype="ext4",
        total_bytes=int(total_gib * GIB),
        free_bytes=int(free_gib * GIB),
        used_percent=round(used, 1),
    )


def disks(*filesystems: FilesystemFacts, errors: tuple[str, ...] = ()) -> DisksFacts:
    return DisksFacts(filesystems, errors)


RECORDED = [
    disks(fs(free_gib=50)),  # OK
    disks(fs(free_gib=8.8)),  # WARNING: 91.2% used
    disks(fs(total_gib=10, free_gib=4)),  # WARNING: under 5 GiB free
    disks(fs(free_gib=3), fs("/data", 500, 400)),  # CRITICAL: 97% used
    disks(errors=("/data: No such file or directory",)),  # UNKNOWN
]


def test_plenty_of_space_is_ok() -> None:
    outcome = CHECK.evaluate(disks(fs(free_gib=50)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "/ 50.0% used, 50.0 GiB free"


def test_above_the_used_warning_names_the_filesystem_and_limit() -> None:
    outcome = CHECK.evaluate(disks(fs(free_gib=8.8)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "/ 91.2% used, 8.8 GiB free (warning above 85%)"


def test_little_free_space_warns_even_when_the_share_used_is_low() -> None:
    outcome = CHECK.evaluate(disks(fs(total_gib=10, free_gib=4)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert "(warning below 5 GiB free)" in outcome.summary


def test_both_limits_crossed_are_named() -> None:
    outcome = CHECK.evaluate(disks(fs(total_gib=20, free_gib=0.5)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("(critical above 95%, below 1 GiB free)")


def test_the_worst_filesystem_wins() -> None:
    outcome = CHECK.evaluate(disks(fs("/", 100, 50), fs("/data", 100, 3)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("/data 97.0% used")
    assert {v.name: v.value for v in outcome.values}["filesystems"] == 2


def test_among_equally_fine_filesystems_the_fullest_is_named() -> None:
    outcome = CHECK.evaluate(disks(fs("/", 100, 80), fs("/home", 100, 40)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.startswith("/home 60.0% used")


def test_zero_limits_make_any_used_space_critical() -> None:
    strict = CHECK.thresholds({"max_used_percent_warning": 0, "max_used_percent_critical": 0})
    assert CHECK.evaluate(disks(fs(free_gib=99.9)), strict).status is CheckStatus.CRITICAL


def test_loosest_limits_let_even_a_full_disk_pass() -> None:
    loose = CHECK.thresholds(
        {
            "max_used_percent_warning": 100,
            "max_used_percent_critical": 100,
            "min_free_gib_warning": 0,
            "min_free_gib_critical": 0,
        }
    )
    assert CHECK.evaluate(disks(fs(free_gib=0)), loose).status is CheckStatus.OK


def test_filesystems_without_a_size_are_not_judged() -> None:
    outcome = CHECK.evaluate(disks(fs("/proc", 0, 0), fs(free_gib=50)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.startswith("/ ")


def test_only_unreadable_paths_is_unknown_with_the_reason() -> None:
    outcome = CHECK.evaluate(disks(errors=("/data: No such file or directory",)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not read /data: No such file or directory"


def test_no_filesystem_at_all_is_unknown() -> None:
    outcome = CHECK.evaluate(disks(), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "no filesystem found"


def test_an_unreadable_path_beside_fine_ones_is_unknown() -> None:
    outcome = CHECK.evaluate(disks(fs(), errors=("/data: Permission denied",)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.endswith("; could not read /data: Permission denied")


def test_an_unreadable_path_does_not_hide_a_full_disk() -> None:
    outcome = CHECK.evaluate(disks(fs(free_gib=2), errors=("/data: gone",)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot list filesystems: Permission denied"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: cannot list filesystems: Permission denied"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_used_percent_warning": 96},  # warning above critical (95)
        {"min_free_gib_warning": 0.5},  # warning below critical (1)
        {"max_used_percent_critical": 101},
        {"min_free_gib_critical": -1, "min_free_gib_warning": 0},
        {"max_used_percent": 80},  # unknown field
        {"paths": ["/"] * 33},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)


def test_thresholds_are_immutable() -> None:
    with pytest.raises(ValidationError):
        DEFAULTS.max_used_percent_warning = 50  # type: ignore[misc]
