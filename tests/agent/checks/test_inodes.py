"""disk.inodes judged on recorded filesystems."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.inodes import DiskInodes
from agent.facts.models import DisksFacts, FilesystemFacts, Unavailable
from remdiag.vocabulary import CheckStatus

GIB = 1024**3
CHECK = DiskInodes()
DEFAULTS = CHECK.thresholds()


def fs(
    path: str = "/",
    inodes_total: int | None = 1_000_000,
    inodes_free: int | None = 900_000,
    fstype: str = "ext4",
) -> FilesystemFacts:
    return FilesystemFacts(
        path=path,
        mountpoint=path,
        device="/dev/sda1",
        fstype=fstype,
        total_bytes=100 * GIB,
        free_bytes=50 * GIB,
        used_percent=50.0,
        inodes_total=inodes_total,
        inodes_free=inodes_free,
    )


def disks(*filesystems: FilesystemFacts, errors: tuple[str, ...] = ()) -> DisksFacts:
    return DisksFacts(filesystems, errors)


RECORDED = [
    disks(fs()),  # OK: 10%
    disks(fs(inodes_free=100_000)),  # WARNING: 90%
    disks(fs(inodes_free=10_000), fs("/home")),  # CRITICAL: 99%
    disks(fs(fstype="btrfs", inodes_total=None, inodes_free=None)),  # UNKNOWN
]


def test_plenty_of_inodes_is_ok() -> None:
    outcome = CHECK.evaluate(disks(fs()), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "/ 10.0% of inodes used, 900,000 free"


def test_above_the_warning_limit_warns() -> None:
    outcome = CHECK.evaluate(disks(fs(inodes_free=100_000)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "/ 90.0% of inodes used, 100,000 free (warning above 85%)"


def test_the_fullest_filesystem_is_judged() -> None:
    outcome = CHECK.evaluate(disks(fs(), fs("/var", inodes_free=10_000)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.startswith("/var 99.0% of inodes used")
    assert outcome.summary.endswith("(critical above 95%)")
    assert {v.name: v.value for v in outcome.values} == {
        "inodes_used_percent": 99.0,
        "inodes_free": 10_000,
        "filesystem": "/var",
        "filesystems": 2,
    }


def test_filesystems_without_inode_counts_are_skipped() -> None:
    no_inodes = fs("/mnt/usb", inodes_total=None, inodes_free=None, fstype="vfat")
    outcome = CHECK.evaluate(disks(no_inodes, fs()), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert {v.name: v.value for v in outcome.values}["filesystems"] == 1


def test_none_with_inode_counts_is_unknown() -> None:
    outcome = CHECK.evaluate(disks(fs(inodes_total=None, inodes_free=None)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.startswith("no filesystem here reports inode counts")


def test_no_filesystem_or_only_unreadable_paths_is_unknown() -> None:
    assert CHECK.evaluate(disks(), DEFAULTS).summary == "no filesystem found"
    outcome = CHECK.evaluate(disks(errors=("/data: gone",)), DEFAULTS)
    assert (outcome.status, outcome.summary) == (CheckStatus.UNKNOWN, "could not read /data: gone")


def test_an_unreadable_path_beside_fine_ones_is_unknown_but_never_hides_a_problem() -> None:
    fine = CHECK.evaluate(disks(fs(), errors=("/data: gone",)), DEFAULTS)
    assert fine.status is CheckStatus.UNKNOWN
    assert fine.summary.endswith("; could not read /data: gone")
    full = CHECK.evaluate(disks(fs(inodes_free=0), errors=("/data: gone",)), DEFAULTS)
    assert full.status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot list filesystems: boom"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_inodes_used_percent_warning": 96},
        {"max_inodes_used_percent_critical": 101},
        {"max_inodes_used_percent_warning": -1},
        {"paths": ["/"] * 33},
        {"max_used_percent_warning": 80},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
