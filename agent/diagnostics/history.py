"""Every diagnostic and remediation run on this machine, kept in state_dir/diagnostics.db.

The end user reads it with `remdiag-agent history`: what ran, when, asked by whom, for which
ticket, and how it ended. The runner also finds a request's recorded outcome here, so a request
delivered twice (the collector resends after a reconnect) runs once. Bounded: the newest
`max_rows` runs are kept, and only the newest OUTPUTS_KEPT keep their output.

SQLite in WAL mode with synchronous=FULL, as the outbox: a run recorded survives a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remdiag.vocabulary import DiagnosticState

HISTORY_FILE = "diagnostics.db"
DEFAULT_MAX_ROWS = 1000
OUTPUTS_KEPT = 50
"""Runs whose output is kept to answer a repeated request; older ones keep only their size."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    ticket_id INTEGER NOT NULL,
    remediation INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    output_bytes INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    output TEXT
);
"""


@dataclass(frozen=True)
class HistoryRow:
    request_id: str
    action: str
    args: dict[str, Any]
    requested_by: str
    ticket_id: int
    remediation: bool
    started_at: datetime
    finished_at: datetime | None
    state: DiagnosticState
    error: str
    output_bytes: int
    truncated: bool


@dataclass(frozen=True)
class Recorded:
    """A finished run as the runner needs it to answer the same request again."""

    state: DiagnosticState
    output: dict[str, Any] | None
    """None once the output was dropped (older than the newest OUTPUTS_KEPT runs)."""
    error: str
    truncated: bool
    finished_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


class History:
    """The run log; safe to use from several threads."""

    def __init__(self, path: Path, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def start(
        self,
        request_id: str,
        action: str,
        args: dict[str, Any],
        requested_by: str,
        ticket_id: int,
        remediation: bool,
    ) -> bool:
        """Record a run as started (RUNNING); False when this request id is already recorded."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO runs (request_id, action, args, requested_by, ticket_id,"
                " remediation, started_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    action[:100],
                    json.dumps(args, default=str)[:4000],
                    requested_by[:200],
                    ticket_id,
                    int(remediation),
                    _now().isoformat(),
                    int(DiagnosticState.RUNNING),
                ),
            )
            self._trim()
            return cursor.rowcount == 1

    def finish(
        self,
        request_id: str,
        state: DiagnosticState,
        error: str,
        output: dict[str, Any],
        output_bytes: int,
        truncated: bool,
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE runs SET finished_at = ?, state = ?, error = ?, output_bytes = ?,"
                    " truncated = ?, output = ? WHERE request_id = ?",
                    (
                        _now().isoformat(),
                        int(state),
                        error[:1000],
                        output_bytes,
                        int(truncated),
                        json.dumps(output),
                        request_id,
                    ),
                )
                # Outputs are for answering a repeat; the oldest drop theirs.
                self._db.execute(
                    "UPDATE runs SET output = NULL WHERE output IS NOT NULL AND id <= "
                    "(SELECT MAX(id) FROM runs) - ?",
                    (OUTPUTS_KEPT,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def recorded(self, request_id: str) -> Recorded | None:
        """The run of `request_id` if it finished; None when never seen or still running."""
        with self._lock:
            row = self._db.execute(
                "SELECT state, output, error, truncated, finished_at FROM runs"
                " WHERE request_id = ? AND finished_at IS NOT NULL",
                (request_id,),
            ).fetchone()
        if row is None:
            return None
        state, output, error, truncated, finished_at = row
        return Recorded(
            DiagnosticState(state),
            json.loads(output) if output is not None else None,
            error,
            bool(truncated),
            datetime.fromisoformat(finished_at),
        )

    def rows(self, limit: int = 50) -> list[HistoryRow]:
        """The newest `limit` runs, newest first."""
        with self._lock:
            found = self._db.execute(
                "SELECT request_id, action, args, requested_by, ticket_id, remediation,"
                " started_at, finished_at, state, error, output_bytes, truncated"
                " FROM runs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            HistoryRow(
                request_id=r[0],
                action=r[1],
                args=_args(r[2]),
                requested_by=r[3],
                ticket_id=r[4],
                remediation=bool(r[5]),
                started_at=datetime.fromisoformat(r[6]),
                finished_at=datetime.fromisoformat(r[7]) if r[7] else None,
                state=DiagnosticState(r[8]),
                error=r[9],
                output_bytes=r[10],
                truncated=bool(r[11]),
            )
            for r in found
        ]

    def _trim(self) -> None:
        self._db.execute(
            "DELETE FROM runs WHERE id <= (SELECT MAX(id) FROM runs) - ?", (self.max_rows,)
        )


def _args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
