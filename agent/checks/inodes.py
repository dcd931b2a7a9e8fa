"""disk.inodes: warns before a filesystem runs out of inodes (file slots) with space still free.

Millions of tiny files (a cache, a mail spool, a runaway build) can use up the inode table while
the disk looks half empty; then no new file can be created at all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import DisksFacts, FilesystemFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class DiskInodesThresholds(Thresholds):
    paths: tuple[str, ...] = Field(default=(), max_length=32)
    """Paths whose filesystems to judge; empty means every local physical filesystem."""
    max_inodes_used_percent_warning: float = Field(default=85, ge=0, le=100)
    max_inodes_used_percent_critical: float = Field(default=95, ge=0, le=100)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_inodes_used_percent_warning > self.max_inodes_used_percent_critical:
            raise ValueError(
                "max_inodes_used_percent_warning must not exceed max_inodes_used_percent_critical"
            )
        return self


class DiskInodes(Check[DisksFacts, DiskInodesThresholds]):
    id = "disk.inodes"
    title = "Free inodes"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=30)
    remediation = (
        "The disk is running out of room for new files even if space is left. Find the folder "
        "holding huge numbers of small files (a cache, temporary files, old mail or logs) and "
        "delete what is not needed; ask L2 if it is a system folder."
    )
    emits = (
        ValueSpec("inodes_used_percent", "%", "share of inodes in use on the fullest filesystem"),
        ValueSpec("inodes_free", "count", "inodes left on that filesystem"),
        ValueSpec("filesystem", "", "that filesystem (the path asked about, or its mount)"),
        ValueSpec("filesystems", "count", "filesystems with inode counts judged"),
    )
    thresholds_type = DiskInodesThresholds

    def gather(
        self, source: FactSource, thresholds: DiskInodesThresholds
    ) -> DisksFacts | Unavailable:
        return source.disks(thresholds.paths)

    def evaluate(self, facts: DisksFacts, thresholds: DiskInodesThresholds) -> Outcome:
        t = thresholds
        unreadable = "; ".join(facts.errors)
        # FAT, NTFS and btrfs have no fixed inode table: nothing there can run out.
        counted = [
            (fs, used) for fs in facts.filesystems if (used := fs.inodes_used_percent) is not None
        ]
        if not counted:
            if unreadable:
                reason = f"could not read {unreadable}"
            elif facts.filesystems:
                reason = "no filesystem here reports inode counts (FAT, NTFS and btrfs have none)"
            else:
                reason = "no filesystem found"
            return Outcome(CheckStatus.UNKNOWN, reason)
        fs, used = max(counted, key=lambda c: c[1])
        status = grade_max(
            used, t.max_inodes_used_percent_warning, t.max_inodes_used_percent_critical
        )
        free = _inodes_free(fs)
        summary = f"{fs.path} {used:.1f}% of inodes used, {free:,} free"
        if status is not CheckStatus.OK:
            limit = (
                t.max_inodes_used_percent_critical
                if status is CheckStatus.CRITICAL
                else t.max_inodes_used_percent_warning
            )
            summary += f" ({status.label} above {limit:g}%)"
        if unreadable:
            summary += f"; could not read {unreadable}"
            # A path we were asked about and could not read is not known to be fine.
            status = CheckStatus.UNKNOWN if status is CheckStatus.OK else status
        values = (
            Measured("inodes_used_percent", round(used, 2), "%"),
            Measured("inodes_free", free, "count"),
            Measured("filesystem", fs.path, ""),
            Measured("filesystems", len(counted), "count"),
        )
        return Outcome(status, summary, values)


def _inodes_free(fs: FilesystemFacts) -> int:
    return fs.inodes_free or 0
