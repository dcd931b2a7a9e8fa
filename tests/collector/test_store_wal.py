"""collector/store/wal.py: a SQLite store's WAL is checkpointed by a thread of its own."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from collector.store import wal
from collector.store.db import make_engine
from collector.store.runner import Store
from tests.collector.factories import enrolled


def _agents_in_file_alone(database: Path, copy: Path) -> int:
    """Agents in the database file without its WAL: what checkpoints have carried into it."""
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT count(*) FROM agents").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema is there yet
        return 0
    finally:
        connection.close()


def test_committed_rows_reach_the_database_file_without_the_writer(tmp_path: Path) -> None:
    database = tmp_path / "collector.db"
    store = Store(f"sqlite:///{database}")
    try:
        # A connection the store keeps open holds the WAL: only a checkpoint moves its pages.
        with store.engine.connect() as reader:
            reader.exec_driver_sql("SELECT 1").all()
            store.call(lambda s: enrolled(s))
            assert store._checkpointer is not None
            deadline = time.monotonic() + 30  # a bound on the wait, not a timing assertion
            while _agents_in_file_alone(database, tmp_path / "copy.db") != 1:
                assert time.monotonic() < deadline, "no checkpoint carried the row over"
                time.sleep(0.05)
            assert store._checkpointer.checkpoints >= 1
    finally:
        store.close()


def test_the_writer_checkpoints_only_as_a_backstop(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'collector.db'}")
    try:
        with store.engine.connect() as connection:
            pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            limit = connection.exec_driver_sql("PRAGMA journal_size_limit").scalar()
        assert (pages, limit) == (wal.BACKSTOP_PAGES, wal.JOURNAL_SIZE_LIMIT)
    finally:
        store.close()
    plain = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with plain.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        plain.dispose()


def test_closing_the_store_stops_the_thread(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'collector.db'}")
    checkpointer = store._checkpointer
    assert checkpointer is not None
    store.close()
    assert not checkpointer._thread.is_alive()


def test_a_checkpoint_reports_the_log_it_carried_over(tmp_path: Path) -> None:
    database = tmp_path / "collector.db"
    store = Store(f"sqlite:///{database}")
    try:
        store.call(lambda s: s.execute(text("CREATE TABLE t (x)")))
        store.call(lambda s: s.execute(text("INSERT INTO t VALUES (1)")))
        assert store._checkpointer is not None
        connection = sqlite3.connect(database)
        try:
            busy, frames, done = store._checkpointer.checkpoint(connection)
        finally:
            connection.close()
        assert busy == 0 and frames == done
    finally:
        store.close()


def test_only_a_sqlite_file_gets_a_checkpointer(tmp_path: Path) -> None:
    store = Store("sqlite://")
    try:
        assert store._checkpointer is None
    finally:
        store.close()
