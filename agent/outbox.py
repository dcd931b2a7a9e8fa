"""The agent's spool: results wait in a SQLite file, batched under sequence numbers, until acked.

Every result is written to `outbox.db` in the state directory before `add` returns, and leaves
only when the collector acks the batch that carried it (or refuses it as invalid). A batch's
sequence and membership are written when the batch is made, so after a crash the same results
go out again under the same sequence and the collector's exactly-once storage by
(agent, sequence) holds. The spool is bounded by a number of results and by bytes; past either
bound the oldest unsent results are dropped first, and the count of drops is kept in the file.

Durability: WAL with synchronous=FULL. NORMAL would already survive kill -9 of the agent (a
committed transaction sits in the WAL, which the OS keeps), but a PC also loses power, and
under NORMAL a power cut may roll back the last commits: results `add` had accepted, or a
batch's sequence, which would then be given to other results. FULL syncs the WAL on each
commit; at the agent's pace (a few results a minute, one commit a batch and an ack) that is
a handful of fsyncs a minute.

Memory stays flat whatever the spool holds: counts and sizes are kept as running totals, and
only the results of the batch being made or resent are read into memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks.base import Measured
from agent.runner import CheckRun
from remdiag.vocabulary import Category, CheckStatus

log = logging.getLogger(__name__)

SPOOL_FILE = "outbox.db"
"""The spool's file name in the agent's state directory."""
DEFAULT_MAX_RESULTS = 10_000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
SCHEMA_VERSION = 1
# Whatever the WAL grew to while draining a big spool, it is cut back to this after a checkpoint.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# An empty spool holding more free space than this gives it back to the disk.
VACUUM_FREE_BYTES = 1024 * 1024
# Rows inspected per step when dropping the oldest results to get back under the bounds.
DROP_STEP = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER,                      -- NULL while pending, else the batch's sequence
    size INTEGER NOT NULL,
    body BLOB NOT NULL                  -- the CheckRun as compact JSON
);
CREATE INDEX IF NOT EXISTS results_by_batch ON results (batch, id);
CREATE TABLE IF NOT EXISTS batches (
    sequence INTEGER PRIMARY KEY,
    results INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Batch:
    sequence: int
    results: tuple[CheckRun, ...]


def encode_run(run: CheckRun) -> bytes:
    """A CheckRun as compact JSON; `decode_run` gives back an equal CheckRun."""
    return json.dumps(
        {
            "check_id": run.check_id,
            "category": int(run.category),
            "status": int(run.status),
            "summary": run.summary,
            "values": [[v.name, v.value, v.unit] for v in run.values],
            "thresholds": run.thresholds,
            "remediation": run.remediation,
            "observed_at": run.observed_at.isoformat(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
        # A lone surrogate (an undecodable file name, say) cannot travel as a proto string:
        # it becomes "?" here rather than a result that fails to send again and again.
    ).encode(errors="replace")


def decode_run(body: bytes) -> CheckRun:
    data: dict[str, Any] = json.loads(body)
    return CheckRun(
        check_id=data["check_id"],
        category=Category(data["category"]),
        status=CheckStatus(data["status"]),
        summary=data["summary"],
        values=tuple(Measured(name, value, unit) for name, value, unit in data["values"]),
        thresholds=data["thresholds"],
        remediation=data["remediation"],
        observed_at=datetime.fromisoformat(data["observed_at"]),
    )


class Outbox:
    """A durable, bounded spool of results; safe to use from several threads."""

    def __init__(
        self,
        path: Path,
        max_results: int = DEFAULT_MAX_RESULTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_results < 1 or max_bytes < 1:
            raise ValueError("the outbox bounds must be positive")
        self.path = Path(path)
        self._max_results = max_results
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lost = 0  # results a failing disk lost, counted as dropped, not yet written down
        self._db = _open(self.path)
        # Closed when the outbox is collected or the interpreter exits, if nobody closed it.
        self._finalizer = weakref.finalize(self, self._db.close)
        self._load_totals()
        if self._over():  # the bounds were lowered since the last run
            with self._lock, self._transaction():
                self._shrink()

    # -- totals kept in memory, so reading them never touches the file ------------------

    def _load_totals(self) -> None:
        db = self._db
        pending = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM results WHERE batch IS NULL"
        ).fetchone()
        self._pending, self._pending_bytes = int(pending[0]), int(pending[1])
        flying = db.execute(
            "SELECT count(*), coalesce(sum(results), 0), coalesce(sum(bytes), 0) FROM batches"
        ).fetchone()
        self._batches, self._flying, self._flying_bytes = (int(v) for v in flying)
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        self._last_sequence = int(counters.get("last_sequence", 0))
        self._dropped = int(counters.get("dropped", 0)) + self._lost
        self._rejected = int(counters.get("rejected", 0))

    @property
    def dropped(self) -> int:
        """Results dropped, oldest first, because the outbox was full (kept across restarts)."""
        return self._dropped

    @property
    def rejected(self) -> int:
        """Results the collector refused as invalid (kept across restarts)."""
        return self._rejected

    @property
    def last_sequence(self) -> int:
        return self._last_sequence

    def __len__(self) -> int:
        return self._pending + self._flying

    @property
    def pending(self) -> int:
        """Results not yet in a batch."""
        return self._pending

    @property
    def in_flight(self) -> int:
        """Batches made (and sent, or about to be) that the collector has not acked."""
        return self._batches

    @property
    def bytes(self) -> int:
        """Bytes of results held (pending and in flight)."""
        return self._pending_bytes + self._flying_bytes

    # -- the operations -------------------------------------------------------------------

    def add(self, run: CheckRun) -> None:
        """Keep `run` until acked; on disk when this returns. Full: the oldest unsent go."""
        body = encode_run(run)
        with self._lock:
            try:
                with self._transaction():
                    self._db.execute(
                        "INSERT INTO results (batch, size, body) VALUES (NULL, ?, ?)",
                        (len(body), body),
                    )
                    self._pending += 1
                    self._pending_bytes += len(body)
                    self._shrink()
                self._lost = 0
            except sqlite3.Error as exc:
                # A full or failing disk loses this result: say so and count it, never crash.
                self._lost += 1
                self._dropped += 1
                log.error("outbox %s: could not keep a %s result: %s", self.path, run.check_id, exc)

    def next_batch(self, max_results: int) -> Batch | None:
        """Take up to `max_results` pending results as the next sequence, kept until acked."""
        with self._lock:
            while self._pending:
                rows = self._db.execute(
                    "SELECT id, size, body FROM results WHERE batch IS NULL ORDER BY id LIMIT ?",
                    (max_results,),
                ).fetchall()
                runs, unreadable = _decode_rows(rows)
                if unreadable:
                    self._drop_unreadable(unreadable)
                    continue  # take the batch again without them
                sequence = self._last_sequence + 1
                size = sum(int(r[1]) for r in rows)
                with self._transaction():
                    # The rows taken are the oldest pending, so "pending up to the last id".
                    self._db.execute(
                        "UPDATE results SET batch = ? WHERE batch IS NULL AND id <= ?",
                        (sequence, rows[-1][0]),
                    )
                    self._db.execute(
                        "INSERT INTO batches (sequence, results, bytes) VALUES (?, ?, ?)",
                        (sequence, len(rows), size),
                    )
                    self._set_counter("last_sequence", sequence)
                    self._last_sequence = sequence
                    self._pending -= len(rows)
                    self._pending_bytes -= size
                    self._batches += 1
                    self._flying += len(rows)
                    self._flying_bytes += size
                return Batch(sequence, runs)
            return None

    def ack(self, through: int) -> None:
        """The collector has stored every sequence up to `through`: forget those batches."""
        with self._lock:
            gone = self._db.execute(
                "SELECT count(*), coalesce(sum(results), 0), coalesce(sum(bytes), 0) "
                "FROM batches WHERE sequence <= ?",
                (through,),
            ).fetchone()
            if not gone[0]:
                return
            with self._transaction():
                self._db.execute(
                    "DELETE FROM results WHERE batch IS NOT NULL AND batch <= ?", (through,)
                )
                self._db.execute("DELETE FROM batches WHERE sequence <= ?", (through,))
                self._batches -= int(gone[0])
                self._flying -= int(gone[1])
                self._flying_bytes -= int(gone[2])
            self._vacuum_if_empty()

    def reject(self, sequence: int) -> int:
        """Drop an in-flight batch the collector refused; return how many results it held."""
        with self._lock:
            row = self._db.execute(
                "SELECT results, bytes FROM batches WHERE sequence = ?", (sequence,)
            ).fetchone()
            if row is None:
                return 0
            count, size = int(row[0]), int(row[1])
            with self._transaction():
                self._forget_batch(sequence, count, size)
                self._rejected += count
                self._set_counter("rejected", self._rejected)
            return count

    def resume(self, acked_through: int) -> list[Batch]:
        """After (re)connecting: forget what the collector has, return what to send again.

        A collector that has seen higher sequences than this agent (the agent lost its spool)
        moves the counter past them, so new results are never mistaken for resends.
        """
        self.ack(acked_through)
        with self._lock:
            if acked_through > self._last_sequence:
                with self._transaction():
                    self._set_counter("last_sequence", acked_through)
                    self._last_sequence = acked_through
            sequences = [
                int(s)
                for (s,) in self._db.execute("SELECT sequence FROM batches ORDER BY sequence")
            ]
            return [
                Batch(
                    s,
                    tuple(
                        decode_run(body)
                        for (body,) in self._db.execute(
                            "SELECT body FROM results WHERE batch = ? ORDER BY id", (s,)
                        )
                    ),
                )
                for s in sequences
            ]

    def reserve_sequence(self) -> int:
        """A sequence for a data message that is not a result batch (the inventory)."""
        with self._lock:
            sequence = self._last_sequence + 1
            with self._transaction():
                self._set_counter("last_sequence", sequence)
                self._last_sequence = sequence
            return sequence

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- helpers; the caller holds the lock -----------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; the totals in memory change with it, and go back if it fails."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (a full disk does that).
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._load_totals()
            raise

    def _set_counter(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _over(self) -> bool:
        return len(self) > self._max_results or self.bytes > self._max_bytes

    def _shrink(self) -> None:
        """Drop the oldest results until within both bounds; count them.

        Pending results go first, oldest first. Only when in-flight batches alone exceed a
        bound does the oldest batch go, whole, so a sequence never changes its results.
        """
        dropped = 0
        while self._over() and self._pending:
            rows = self._db.execute(
                "SELECT id, size FROM results WHERE batch IS NULL ORDER BY id LIMIT ?",
                (DROP_STEP,),
            ).fetchall()
            last_id = None
            for row_id, size in rows:
                if not self._over():
                    break
                last_id = row_id
                self._pending -= 1
                self._pending_bytes -= int(size)
                dropped += 1
            if last_id is not None:
                self._db.execute("DELETE FROM results WHERE batch IS NULL AND id <= ?", (last_id,))
        while self._over() and self._batches:
            sequence, count, size = self._db.execute(
                "SELECT sequence, results, bytes FROM batches ORDER BY sequence LIMIT 1"
            ).fetchone()
            self._forget_batch(int(sequence), int(count), int(size))
            dropped += int(count)
        if dropped:
            self._dropped += dropped
            self._set_counter("dropped", self._dropped)
            log.warning(
                "outbox full (%d results, %d bytes at most): dropped the %d oldest",
                self._max_results,
                self._max_bytes,
                dropped,
            )
        elif self._lost:
            # Results lost while the disk failed are written down once it works again.
            self._set_counter("dropped", self._dropped)

    def _drop_unreadable(self, ids: list[int]) -> None:
        """Results this agent cannot read back (a damaged file): dropped and counted."""
        log.error("outbox %s: %d unreadable results dropped", self.path, len(ids))
        with self._transaction():
            for row_id in ids:
                (size,) = self._db.execute(
                    "SELECT size FROM results WHERE id = ?", (row_id,)
                ).fetchone()
                self._db.execute("DELETE FROM results WHERE id = ?", (row_id,))
                self._pending -= 1
                self._pending_bytes -= int(size)
            self._dropped += len(ids)
            self._set_counter("dropped", self._dropped)

    def _forget_batch(self, sequence: int, count: int, size: int) -> None:
        self._db.execute("DELETE FROM results WHERE batch = ?", (sequence,))
        self._db.execute("DELETE FROM batches WHERE sequence = ?", (sequence,))
        self._batches -= 1
        self._flying -= count
        self._flying_bytes -= size

    def _vacuum_if_empty(self) -> None:
        """Give the disk back once everything is delivered (the file keeps its peak size else).

        Only when there is much to give: the spool empties after nearly every batch.
        """
        if len(self):
            return
        with contextlib.suppress(sqlite3.Error):
            (free_pages,) = self._db.execute("PRAGMA freelist_count").fetchone()
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
            if free_pages * page_size < VACUUM_FREE_BYTES:
                return
            # executescript steps the pragma to the end (execute frees a single page).
            # The checkpoint then lets the file itself shrink, and empties the WAL.
            self._db.executescript("PRAGMA incremental_vacuum;")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _decode_rows(rows: list[Any]) -> tuple[tuple[CheckRun, ...], list[int]]:
    """The results of (id, size, body) rows, and the ids of rows that do not decode."""
    runs: list[CheckRun] = []
    unreadable: list[int] = []
    for row_id, _, body in rows:
        try:
            runs.append(decode_run(body))
        except (ValueError, KeyError, TypeError) as exc:
            log.debug("outbox row %d: %s", row_id, exc)
            unreadable.append(int(row_id))
    return tuple(runs), unreadable


class UnusableSpoolError(sqlite3.DatabaseError):
    """The file is a database, but not a spool this agent can use."""


def _unusable(exc: sqlite3.DatabaseError) -> bool:
    """A damaged or foreign file, as opposed to a passing condition such as a lock."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return isinstance(exc, UnusableSpoolError) or name.startswith(
        ("SQLITE_CORRUPT", "SQLITE_NOTADB")
    )


def _open(path: Path) -> sqlite3.Connection:
    """Open (or create) the spool; a file that is not a usable spool is set aside, not fatal."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if not _unusable(exc):
            raise
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        log.error("outbox %s is unreadable (%s): moved to %s, starting empty", path, exc, aside)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        return _connect(path)


def _connect(path: Path) -> sqlite3.Connection:
    # The results say much about the machine: readable by the agent's owner only. SQLite gives
    # its -wal and -shm files the database file's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect only on a new file
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise UnusableSpoolError("the spool cannot use write-ahead logging")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise UnusableSpoolError(f"spool schema version {version} is unknown")
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise UnusableSpoolError(f"integrity check: {verdict}")
    except BaseException:
        db.close()
        raise
    return db
