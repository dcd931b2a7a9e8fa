"""Checkpoints a SQLite store's write-ahead log from a thread of its own, off the writer's path.

SQLite copies the WAL back into the database file (a checkpoint) inside the commit that takes
the log past `wal_autocheckpoint` pages: under ingest that was every few commits, about half
of what a commit cost the store's single writer. Here a thread with its own connection runs a
PASSIVE checkpoint every `interval_s`: it never waits for the writer nor blocks it, and runs in
SQLite's C code with the GIL released, so on a machine with two cores it costs the writer
nothing. The writer's own automatic checkpoint stays on at `BACKSTOP_PAGES`, well above what
this thread lets build up, so the log stays bounded even if the thread falls behind or stops.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.5
BACKSTOP_PAGES = 16384
"""The writer's `wal_autocheckpoint` (64 MiB of 4 KiB pages): only reached if this thread lags."""
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes the WAL file is truncated back to after it was reset: disk stays bounded too."""


class WalCheckpointer:
    """A daemon thread checkpointing the database at `path` until `close()`."""

    def __init__(self, path: str, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._path = path
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.checkpoints = 0
        """PASSIVE checkpoints run so far: for tests and curiosity."""
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the log, frames checkpointed)."""
        busy, frames, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        return int(busy), int(frames), int(done)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        except sqlite3.Error:
            log.exception("WAL checkpoints: cannot open %s; the writer does them", self._path)
            return
        try:
            while not self._stop.wait(self._interval_s):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error as exc:  # busy or locked now: the next round tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
