"""Caches for facts that are costly to read: by the files they come from, or by age.

Installed packages and pending updates cost a package-manager run (apt-get's simulation takes
over a second of CPU), yet change only when the package database or the package lists do:
MtimeCache keeps them until the "signature" of those files (mtime and size) changes. SMART data
and the like cost a process spawn and change slowly: TtlCache keeps them for a time-to-live.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Signature = tuple[tuple[str, int, int], ...]
"""(path, mtime in ns, size) per path; -1, -1 for a path that does not exist."""


def signature(paths: Sequence[str]) -> Signature:
    """What the files (or directories) at `paths` look like now, for spotting a change cheaply."""
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found.append((path, -1, -1))
        else:
            found.append((path, st.st_mtime_ns, st.st_size))
    return tuple(found)


class MtimeCache(Generic[T]):
    """One value and the signature it was computed under.

    `max_age_s` bounds how long a value is trusted even if nothing changed (a failure that was
    cached, a source without a reliable mtime). Thread-safe: checks and the inventory gather in
    different threads, and two of them asking at once must not both run apt-get.
    """

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._key: object = None
        self._value: T | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, key: object, compute: Callable[[], T]) -> T:
        """The cached value if `key` is unchanged and young enough; else compute() and keep it."""
        with self._lock:
            now = self._clock()
            fresh = now - self._at < self._max_age_s
            if self._value is not None and key == self._key and fresh:
                return self._value
            value = compute()
            self._key, self._value, self._at = key, value, now
            return value


class TtlCache(Generic[T]):
    """The last answer of `read`, reused for `ttl_s` seconds.

    Checks gather in worker threads, so one read runs at a time: a second caller waits for the
    first one's answer instead of spawning the same tool again. Unavailable answers are kept
    too: a missing tool does not appear between two cycles.
    """

    def __init__(
        self,
        read: Callable[[], T],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, T] | None = None

    def get(self) -> T:
        with self._lock:
            now = self._clock()
            if self._answer is None or now - self._answer[0] >= self._ttl_s:
                self._answer = (now, self._read())
            return self._answer[1]
