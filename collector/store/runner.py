"""Runs blocking store work off the event loop, one transaction per call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from collector.store.db import make_engine, migrate, session_factory, sqlite_file
from collector.store.wal import WalCheckpointer

T = TypeVar("T")


class Store:
    """The collector's database: migrated on open, used through `run` (async) or `call` (sync)."""

    def __init__(self, url: str) -> None:
        self.url = url
        database_file = sqlite_file(url)
        self.engine: Engine = make_engine(url, background_checkpoints=database_file is not None)
        migrate(self.engine)
        self._checkpointer = WalCheckpointer(database_file) if database_file else None
        self.sessions = session_factory(self.engine)
        # SQLite has one writer: a single worker turns lock waits into an orderly queue.
        self.writers = 1 if self.engine.dialect.name == "sqlite" else 4
        """Transactions that can usefully run at once."""
        self._executor = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="store")

    def call(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction: committed if it returns, rolled back if it raises."""
        with self.sessions.begin() as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.call, work)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()
