"""The busiest and largest processes, with CPU use measured since the previous sample.

A process's CPU use only means something over an interval. The sampler keeps, per pid, the
psutil.Process and the CPU time it had used at the previous sample, so each call measures the
interval since the one before (the check's own schedule) without sleeping. A process that
started within the interval is measured over its whole life, which all lies in the interval.
CPU times are counted in clock ticks (10 ms on Linux), so a call too soon after the previous
one measures nothing and leaves the baselines for the next.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import psutil

from agent.facts.models import Unavailable
from agent.facts.software.models import ProcessesFacts, ProcessInfo

TOP = 10
# psutil derives a start time from clock ticks since boot: allow for its rounding when deciding
# that a process we had not seen was born after the previous sample.
_BIRTH_SLACK_S = 1.0
MIN_WINDOW_S = 10.0


@dataclass
class _Seen:
    process: psutil.Process
    create_time: float
    cpu_seconds: float


@dataclass(frozen=True)
class _Row:
    process: psutil.Process
    name: str
    cpu_percent: float | None
    rss_bytes: int


class ProcessSampler:
    """Samples every process; keep one per agent so intervals run from call to call.

    Thread-safe: the check and the inventory may ask from different threads.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, min_window_s: float = MIN_WINDOW_S
    ) -> None:
        self._clock = clock
        self._min_window_s = min_window_s
        self._seen: dict[int, _Seen] = {}
        self._last_at: float | None = None
        self._last_wall: float | None = None
        self._lock = threading.Lock()

    def sample(self, exclude: Collection[str] = (), top: int = TOP) -> ProcessesFacts | Unavailable:
        """Top `top` processes by CPU and by memory, leaving out names in `exclude` (any case)."""
        with self._lock:
            return self._sample(exclude, top)

    def _sample(self, exclude: Collection[str], top: int) -> ProcessesFacts | Unavailable:
        try:
            pids = psutil.pids()
            memory_total = psutil.virtual_memory().total
            cores = psutil.cpu_count(logical=True) or 1
        except (OSError, psutil.Error) as exc:
            return Unavailable(f"cannot list processes: {exc}")
        now = self._clock()
        wall = time.time()
        elapsed = None if self._last_at is None else now - self._last_at
        window = elapsed if elapsed is not None and elapsed >= self._min_window_s else None
        keep_baselines = elapsed is not None and window is None
        last_wall = self._last_wall
        if not keep_baselines:
            self._last_at, self._last_wall = now, wall
        skip = {name.casefold() for name in exclude}
        rows: list[_Row] = []
        seen: dict[int, _Seen] = {}
        for pid in pids:
            row = self._read(pid, seen, window, last_wall, keep_baselines)
            if row is not None and row.name.casefold() not in skip:
                # Clock-tick rounding can overshoot; no process uses more than every core.
                if row.cpu_percent is not None and row.cpu_percent > 100.0 * cores:
                    row = dataclasses.replace(row, cpu_percent=100.0 * cores)
                rows.append(row)
        # Forget processes that ended, so the table does not grow without end.
        self._seen = seen
        by_memory = sorted(rows, key=lambda r: r.rss_bytes, reverse=True)[:top]
        by_cpu: list[_Row] = []
        if window is not None:
            measured = [r for r in rows if r.cpu_percent is not None]
            by_cpu = sorted(measured, key=lambda r: r.cpu_percent or 0.0, reverse=True)[:top]
        users: dict[int, str] = {}
        return ProcessesFacts(
            top_by_cpu=tuple(_info(r, memory_total, users) for r in by_cpu),
            top_by_memory=tuple(_info(r, memory_total, users) for r in by_memory),
            process_count=len(rows),
            logical_cores=cores,
            memory_total_bytes=memory_total,
            cpu_window_seconds=window,
        )

    def _read(
        self,
        pid: int,
        seen: dict[int, _Seen],
        window: float | None,
        last_wall: float | None,
        keep_baselines: bool,
    ) -> _Row | None:
        known = self._seen.get(pid)
        try:
            process = known.process if known else psutil.Process(pid)
            with process.oneshot():
                name = process.name()
                times = process.cpu_times()
                rss = process.memory_info().rss
                create_time = process.create_time()
        except (OSError, psutil.Error):
            return None  # ended meanwhile, or a kernel thread we may not read
        cpu_seconds = times.user + times.system
        # A pid reused by a new process shows less CPU time than the old one had used.
        if known is not None and cpu_seconds < known.cpu_seconds:
            known = None
        if not keep_baselines:
            seen[pid] = _Seen(process, create_time, cpu_seconds)
        elif known is not None:
            seen[pid] = known
        # else: first seen between two samples; the next one measures it from its birth.
        percent: float | None = None
        if window is not None and window > 0:
            if known is not None:
                percent = 100.0 * (cpu_seconds - known.cpu_seconds) / window
            elif last_wall is not None and create_time >= last_wall - _BIRTH_SLACK_S:
                percent = 100.0 * cpu_seconds / window  # born within the interval
        return _Row(process, name, percent, rss)


def _info(row: _Row, memory_total: int, users: dict[int, str]) -> ProcessInfo:
    pid = row.process.pid
    if pid not in users:
        try:
            users[pid] = row.process.username()
        except (OSError, psutil.Error, KeyError):
            users[pid] = ""  # a uid without a name, or not ours to read
    return ProcessInfo(
        pid=pid,
        name=row.name,
        user=users[pid],
        cpu_percent=None if row.cpu_percent is None else round(row.cpu_percent, 1),
        rss_bytes=row.rss_bytes,
        memory_percent=round(100.0 * row.rss_bytes / memory_total, 2) if memory_total else 0.0,
    )


def measure_top(
    top: int, interval_s: float, sleep: Callable[[float], None] = time.sleep
) -> ProcessesFacts | Unavailable:
    """The top `top` processes, CPU measured over a fresh `interval_s` of its own.

    For an on-demand look: a sampler of its own, so the agent's checks keep their intervals.
    """
    sampler = ProcessSampler(min_window_s=interval_s / 2)
    first = sampler.sample(top=top)
    if isinstance(first, Unavailable):
        return first
    sleep(interval_s)
    return sampler.sample(top=top)
