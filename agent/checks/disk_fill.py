"""disk.fill_soon: warns days ahead when a filesystem is filling up fast enough to run out.

The rate is a least-squares line through the free space of the recent samples (so one burst of
downloads followed by a clean-up does not count as a trend), and the forecast is the free space
left divided by that rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_min
from agent.facts.hardware.models import (
    DiskUsageHistoryFacts,
    DiskUsageSample,
    FilesystemHistory,
)
from agent.facts.models import Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

GIB = 1024**3
DAY_S = 86400.0
MAX_WINDOW_HOURS = 168
"""The facts keep a little over a week of samples."""


class DiskFillSoonThresholds(Thresholds):
    paths: tuple[str, ...] = Field(default=(), max_length=32)
    """Paths whose filesystems to judge; empty means every local physical filesystem."""
    window_hours: float = Field(default=48, gt=0, le=MAX_WINDOW_HOURS)
    """How far back the growth rate looks."""
    min_history_hours: float = Field(default=6, gt=0, le=MAX_WINDOW_HOURS)
    """No forecast before the history spans this long: a rate over minutes is noise."""
    min_days_until_full_warning: float = Field(default=14, ge=0)
    min_days_until_full_critical: float = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_days_until_full_warning < self.min_days_until_full_critical:
            raise ValueError(
                "min_days_until_full_warning must not be below min_days_until_full_critical"
            )
        if self.min_history_hours > self.window_hours:
            raise ValueError("min_history_hours must not exceed window_hours")
        return self


@dataclass(frozen=True)
class _Forecast:
    mountpoint: str
    free_bytes: int
    fill_bytes_per_day: float
    """Positive when the filesystem is filling up."""
    history_hours: float
    status: CheckStatus

    @property
    def days_until_full(self) -> float | None:
        if self.fill_bytes_per_day <= 0:
            return None
        return max(0.0, self.free_bytes / self.fill_bytes_per_day)


class DiskFillSoon(Check[DiskUsageHistoryFacts, DiskFillSoonThresholds]):
    id = "disk.fill_soon"
    title = "Disk filling up"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=15)
    remediation = (
        "Something is writing a lot to this disk. Find what grew recently (large downloads, a "
        "sync folder, log or backup files, a program's cache) and stop or move it, then free "
        "space before the disk is full and programs start failing."
    )
    emits = (
        ValueSpec("days_until_full", "days", "forecast time until the filesystem is full"),
        ValueSpec("fill_rate_gib_per_day", "GiB/day", "how fast free space is shrinking"),
        ValueSpec("free_gib", "GiB", "space left on the filesystem"),
        ValueSpec("filesystem", "", "the filesystem forecast to fill first (its mount point)"),
        ValueSpec("history_hours", "h", "span of usage history the rate was computed over"),
        ValueSpec("filesystems", "count", "filesystems with enough history to judge"),
    )
    thresholds_type = DiskFillSoonThresholds

    def gather(
        self, source: FactSource, thresholds: DiskFillSoonThresholds
    ) -> DiskUsageHistoryFacts | Unavailable:
        disks = source.disks(thresholds.paths)
        if isinstance(disks, Unavailable):
            return disks
        # Recording the current usage is part of asking: the history grows as the check runs.
        return source.disk_usage_history(disks)

    def evaluate(self, facts: DiskUsageHistoryFacts, thresholds: DiskFillSoonThresholds) -> Outcome:
        t = thresholds
        forecasts: list[_Forecast] = []
        too_short: list[tuple[str, float]] = []
        for fs in facts.filesystems:
            recent = _recent(fs, t.window_hours)
            if not recent or recent[-1].total_bytes <= 0:
                continue
            span_hours = (recent[-1].timestamp - recent[0].timestamp) / 3600
            if len(recent) < 2 or span_hours < t.min_history_hours:
                too_short.append((fs.mountpoint, span_hours))
                continue
            forecasts.append(_forecast(fs.mountpoint, recent, span_hours, t))
        unreadable = "; ".join(facts.errors)
        if not forecasts:
            return _not_judged(too_short, t, unreadable)
        # Worst status first, then the soonest to fill (a shrinking one never fills).
        worst = max(forecasts, key=lambda f: (f.status, f.fill_bytes_per_day / (f.free_bytes + 1)))
        summary, values = _describe(worst, t)
        values.append(Measured("filesystems", len(forecasts), "count"))
        status = worst.status
        if too_short:
            summary += f"; {len(too_short)} more still gathering history"
        if unreadable:
            summary += f"; could not read {unreadable}"
            # A path we were asked about and could not read is not known to be fine.
            status = CheckStatus.UNKNOWN if status is CheckStatus.OK else status
        return Outcome(status, summary, tuple(values))


def _recent(fs: FilesystemHistory, window_hours: float) -> list[DiskUsageSample]:
    if not fs.samples:
        return []
    start = fs.samples[-1].timestamp - window_hours * 3600
    return [s for s in fs.samples if s.timestamp >= start]


def _forecast(
    mountpoint: str,
    samples: list[DiskUsageSample],
    span_hours: float,
    t: DiskFillSoonThresholds,
) -> _Forecast:
    latest = samples[-1]
    free = latest.total_bytes - latest.used_bytes
    # Free space, not used space: on pooled filesystems (btrfs, ZFS, APFS) the total moves with
    # what other volumes use, and a resized disk shows as free space appearing.
    fill_per_day = -_slope_per_second(samples) * DAY_S
    status = CheckStatus.OK
    if fill_per_day > 0:
        days = max(0.0, free / fill_per_day)
        status = grade_min(days, t.min_days_until_full_warning, t.min_days_until_full_critical)
    return _Forecast(mountpoint, free, fill_per_day, span_hours, status)


def _slope_per_second(samples: list[DiskUsageSample]) -> float:
    """Least-squares slope of free bytes over time."""
    n = len(samples)
    t0 = samples[0].timestamp
    xs = [s.timestamp - t0 for s in samples]  # offset keeps the sums small and exact enough
    ys = [float(s.total_bytes - s.used_bytes) for s in samples]
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _describe(f: _Forecast, t: DiskFillSoonThresholds) -> tuple[str, list[Measured]]:
    free_gib = f.free_bytes / GIB
    rate_gib = f.fill_bytes_per_day / GIB
    values = [
        Measured("filesystem", f.mountpoint, ""),
        Measured("free_gib", round(free_gib, 3), "GiB"),
        Measured("fill_rate_gib_per_day", round(rate_gib, 3), "GiB/day"),
        Measured("history_hours", round(f.history_hours, 1), "h"),
    ]
    days = f.days_until_full
    if days is None:
        summary = (
            f"{f.mountpoint} is not filling up ({free_gib:.1f} GiB free, "
            f"{f.history_hours:.0f} h of history)"
        )
        return summary, values
    values.insert(0, Measured("days_until_full", round(days, 2), "days"))
    summary = (
        f"{f.mountpoint} fills at {rate_gib:.2f} GiB/day: full in {_duration(days)} "
        f"({free_gib:.1f} GiB free)"
    )
    if f.status is not CheckStatus.OK:
        limit = (
            t.min_days_until_full_critical
            if f.status is CheckStatus.CRITICAL
            else t.min_days_until_full_warning
        )
        summary += f" ({f.status.label} below {limit:g} days)"
    return summary, values


def _not_judged(
    too_short: list[tuple[str, float]], t: DiskFillSoonThresholds, unreadable: str
) -> Outcome:
    if too_short:
        longest = max(hours for _, hours in too_short)
        summary = f"not enough history yet: {longest:.1f} h of {t.min_history_hours:g} h"
        if unreadable:
            summary += f"; could not read {unreadable}"
        values = (Measured("history_hours", round(longest, 1), "h"),)
        return Outcome(CheckStatus.UNKNOWN, summary, values)
    reason = f"could not read {unreadable}" if unreadable else "no filesystem found"
    return Outcome(CheckStatus.UNKNOWN, reason)


def _duration(days: float) -> str:
    if days < 1:
        return f"about {days * 24:.0f} h"
    if days > 365:
        return "more than a year"
    return f"about {days:.1f} days"
