"""Engines, sessions and Alembic migrations for the store (SQLite default, PostgreSQL at scale)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from collector.store import wal

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite `url`; None for PostgreSQL or an in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def make_engine(url: str, background_checkpoints: bool = False) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and enforced foreign keys, and
    with `background_checkpoints` leaves the WAL's checkpoints to collector/store/wal.py."""
    if make_url(url).get_backend_name() == "sqlite":
        database_file = sqlite_file(url)
        if database_file:
            Path(database_file).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", partial(_sqlite_pragmas, background_checkpoints))
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(background_checkpoints: bool, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL is durable across process crashes (not power loss).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    if background_checkpoints:
        cursor.execute(f"PRAGMA wal_autocheckpoint={wal.BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={wal.JOURNAL_SIZE_LIMIT}")
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic."""
    _run_migrations(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` with Alembic."""
    _run_migrations(engine, lambda config: command.downgrade(config, revision))


def _run_migrations(engine: Engine, run: Callable[[Config], None]) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite changes a table by copying it and dropping the old one, and a DROP TABLE
            # with foreign keys on deletes what refers to it by cascade: every machine's
            # results and tickets. The pragma only takes effect outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                run(config)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
