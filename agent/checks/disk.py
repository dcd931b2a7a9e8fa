"""disk.free_space: warns before a filesystem fills up."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max, grade_min
from agent.facts.models import DisksFacts, FilesystemFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

GIB = 1024**3


class DiskFreeSpaceThresholds(Thresholds):
    paths: tuple[str, ...] = Field(default=(), max_length=32)
    """Paths whose filesystems to judge; empty means every local physical filesystem."""
    max_used_percent_warning: float = Field(default=85, ge=0, le=100)
    max_used_percent_critical: float = Field(default=95, ge=0, le=100)
    min_free_gib_warning: float = Field(default=5, ge=0)
    min_free_gib_critical: float = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_used_percent_warning > self.max_used_percent_critical:
            raise ValueError("max_used_percent_warning must not exceed max_used_percent_critical")
        if self.min_free_gib_warning < self.min_free_gib_critical:
            raise ValueError("min_free_gib_warning must not be below min_free_gib_critical")
        return self


class DiskFreeSpace(Check[DisksFacts, DiskFreeSpaceThresholds]):
    id = "disk.free_space"
    title = "Free disk space"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=5)
    remediation = (
        "Free up space: empty the recycle bin, clear temporary files and the downloads folder, "
        "uninstall programs that are no longer used, or move large files elsewhere. "
        "If the disk is simply too small, plan a bigger one."
    )
    emits = (
        ValueSpec("used_percent", "%", "share of the fullest filesystem in use"),
        ValueSpec("free_gib", "GiB", "space left on the fullest filesystem"),
        ValueSpec("filesystem", "", "the fullest filesystem (the path asked about, or its mount)"),
        ValueSpec("filesystems", "count", "filesystems judged"),
    )
    thresholds_type = DiskFreeSpaceThresholds

    def gather(
        self, source: FactSource, thresholds: DiskFreeSpaceThresholds
    ) -> DisksFacts | Unavailable:
        return source.disks(thresholds.paths)

    def evaluate(self, facts: DisksFacts, thresholds: DiskFreeSpaceThresholds) -> Outcome:
        unreadable = "; ".join(facts.errors)
        # A filesystem without a size (/proc, say, when asked about) has nothing to fill up.
        sized = [fs for fs in facts.filesystems if fs.total_bytes > 0]
        if not sized:
            reason = f"could not read {unreadable}" if unreadable else "no filesystem found"
            return Outcome(CheckStatus.UNKNOWN, reason)
        judged = [(_grade(fs, thresholds), fs) for fs in sized]
        # Worst status first, then the fullest; OK < WARNING < CRITICAL in the proto numbering.
        (status, reasons), worst = max(judged, key=lambda j: (j[0][0], j[1].used_percent))
        summary = (
            f"{worst.path} {worst.used_percent:.1f}% used, {worst.free_bytes / GIB:.1f} GiB free"
        )
        if reasons:
            summary += f" ({status.label} {', '.join(reasons)})"
        if unreadable:
            summary += f"; could not read {unreadable}"
            # A path we were asked about and could not read is not known to be fine.
            status = CheckStatus.UNKNOWN if status is CheckStatus.OK else status
        values = (
            Measured("used_percent", worst.used_percent, "%"),
            Measured("free_gib", round(worst.free_bytes / GIB, 3), "GiB"),
            Measured("filesystem", worst.path, ""),
            Measured("filesystems", len(sized), "count"),
        )
        return Outcome(status, summary, values)


def _grade(fs: FilesystemFacts, t: DiskFreeSpaceThresholds) -> tuple[CheckStatus, tuple[str, ...]]:
    """The filesystem's status and, when not OK, which limits it crossed at that status."""
    free_gib = fs.free_bytes / GIB
    by_used = grade_max(fs.used_percent, t.max_used_percent_warning, t.max_used_percent_critical)
    by_free = grade_min(free_gib, t.min_free_gib_warning, t.min_free_gib_critical)
    status = max(by_used, by_free)
    if status is CheckStatus.OK:
        return status, ()
    reasons = []
    if by_used is status:
        limit = (
            t.max_used_percent_critical
            if status is CheckStatus.CRITICAL
            else t.max_used_percent_warning
        )
        reasons.append(f"above {limit:g}%")
    if by_free is status:
        limit = (
            t.min_free_gib_critical if status is CheckStatus.CRITICAL else t.min_free_gib_warning
        )
        reasons.append(f"below {limit:g} GiB free")
    return status, tuple(reasons)
