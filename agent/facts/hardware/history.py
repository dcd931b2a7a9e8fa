"""Disk usage history: a small, bounded record of how full each filesystem was over time.

disk.fill_soon needs a growth rate, and a rate needs the past. Each time that check gathers, the
current usage of each filesystem is added here; the samples themselves are what the check judges.
The history is kept in memory and, when the agent has a state directory, in one JSON file there,
so that a restart does not make the check wait hours for enough history again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.facts.hardware.models import DiskUsageSample
from remdiag.files import write_atomic

log = logging.getLogger(__name__)

HISTORY_FILE = "disk-usage-history.json"
FORMAT_VERSION = 1
MAX_AGE_S = 8 * 24 * 3600.0
"""Samples older than this are dropped: a little more than the longest window a policy may ask."""
MIN_SPACING_S = 15 * 60.0
"""One stored sample per filesystem per quarter hour at most, however often the check runs."""
MAX_SAMPLES = 800
"""Per filesystem: 8 days at one sample per quarter hour is 768."""
MAX_FILESYSTEMS = 64
FUTURE_TOLERANCE_S = 3600.0
"""Samples this far "after now" are kept: threads race for the lock, clocks get nudged by NTP."""


class DiskUsageHistory:
    """Samples of (time, used, total) per mountpoint; safe to share between threads.

    `path` is the JSON file to persist to, or None to keep the history in memory only. A file
    that cannot be parsed is ignored (and replaced on the next write): a lost history only
    delays judging, a crash would stop the check.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_age_s: float = MAX_AGE_S,
        min_spacing_s: float = MIN_SPACING_S,
        max_samples: int = MAX_SAMPLES,
        max_filesystems: int = MAX_FILESYSTEMS,
    ) -> None:
        self.path = path
        self._max_age_s = max_age_s
        self._min_spacing_s = min_spacing_s
        self._max_samples = max_samples
        self._max_filesystems = max_filesystems
        self._lock = threading.Lock()
        self._samples: dict[str, list[DiskUsageSample]] | None = None
        self._warned_unwritable = False

    def record(
        self, usage: Iterable[tuple[str, int, int]], now: float
    ) -> dict[str, tuple[DiskUsageSample, ...]]:
        """Add (mountpoint, used_bytes, total_bytes) observed at `now`; return their histories.

        Each history ends with the observation just made, even when it came too soon after the
        previous stored sample to be kept itself.
        """
        with self._lock:
            samples = self._loaded()
            changed = self._prune(samples, now)
            result: dict[str, tuple[DiskUsageSample, ...]] = {}
            for mountpoint, used, total in usage:
                current = DiskUsageSample(now, used, total)
                kept = samples.get(mountpoint)
                if kept is None:
                    kept = samples[mountpoint] = []
                if kept and now - kept[-1].timestamp < self._min_spacing_s:
                    earlier = (s for s in kept if s.timestamp < now)
                    result[mountpoint] = (*earlier, current)
                    continue
                kept.append(current)
                del kept[: -self._max_samples]
                changed = True
                result[mountpoint] = tuple(kept)
            changed |= self._bound_filesystems(samples)
            if changed:
                self._save(samples)
            return result

    def samples(self) -> dict[str, tuple[DiskUsageSample, ...]]:
        """What is kept now, without recording anything."""
        with self._lock:
            return {mount: tuple(kept) for mount, kept in self._loaded().items()}

    def _prune(self, samples: dict[str, list[DiskUsageSample]], now: float) -> bool:
        changed = False
        oldest = now - self._max_age_s
        for mountpoint in list(samples):
            kept = samples[mountpoint]
            # A sample well "in the future" means the clock was set back: it would skew the rate.
            fresh = [s for s in kept if oldest <= s.timestamp <= now + FUTURE_TOLERANCE_S]
            if len(fresh) != len(kept):
                changed = True
                if fresh:
                    samples[mountpoint] = fresh
                else:
                    del samples[mountpoint]
        return changed

    def _bound_filesystems(self, samples: dict[str, list[DiskUsageSample]]) -> bool:
        excess = len(samples) - self._max_filesystems
        if excess <= 0:
            return False
        # Drop those seen least recently: removable media that came and went.
        stale = sorted(samples, key=lambda m: samples[m][-1].timestamp if samples[m] else 0.0)
        for mountpoint in stale[:excess]:
            del samples[mountpoint]
        return True

    def _loaded(self) -> dict[str, list[DiskUsageSample]]:
        if self._samples is None:
            self._samples = self._read() if self.path is not None else {}
        return self._samples

    def _read(self) -> dict[str, list[DiskUsageSample]]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("cannot read disk usage history %s: %s; starting over", self.path, exc)
            return {}
        try:
            return decode(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("disk usage history %s is corrupt (%s); starting over", self.path, exc)
            return {}

    def _save(self, samples: dict[str, list[DiskUsageSample]]) -> None:
        if self.path is None:
            return
        try:
            write_atomically(self.path, json.dumps(encode(samples), separators=(",", ":")))
        except OSError as exc:
            # The history still works in memory; say so once rather than on every sample.
            if not self._warned_unwritable:
                log.warning("cannot save disk usage history to %s: %s", self.path, exc)
                self._warned_unwritable = True


def encode(samples: dict[str, list[DiskUsageSample]]) -> dict[str, Any]:
    # Whole seconds, rounded down: a reloaded sample must never look later than it was taken.
    return {
        "version": FORMAT_VERSION,
        "filesystems": {
            mount: [[int(s.timestamp), s.used_bytes, s.total_bytes] for s in kept]
            for mount, kept in samples.items()
        },
    }


def decode(data: Any) -> dict[str, list[DiskUsageSample]]:
    """The samples in a parsed history file; ValueError/TypeError/KeyError if it is not one."""
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError("not a version 1 disk usage history")
    filesystems = data["filesystems"]
    if not isinstance(filesystems, dict):
        raise ValueError("filesystems is not an object")
    decoded: dict[str, list[DiskUsageSample]] = {}
    for mount, rows in filesystems.items():
        if not isinstance(mount, str) or not isinstance(rows, list):
            raise ValueError(f"bad history for {mount!r}")
        kept = []
        for timestamp, used, total in rows:
            if not all(_is_number(x) for x in (timestamp, used, total)):
                raise ValueError(f"bad sample {[timestamp, used, total]!r}")
            kept.append(DiskUsageSample(float(timestamp), int(used), int(total)))
        kept.sort(key=lambda s: s.timestamp)
        if kept:
            decoded[mount] = kept
    return decoded


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader (or a crash) sees the old file or the new one."""
    write_atomic(path, text.encode("utf-8"), 0o600)
