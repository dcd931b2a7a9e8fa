"""What collectors sharing one PostgreSQL tell each other: LISTEN/NOTIFY and advisory locks.

A diagnostic queued through one collector must reach the collector holding the machine's
stream, and the console call watching it must see what the agent answered through another
collector. Store functions `announce` in their own transaction (PostgreSQL delivers a NOTIFY at
commit, never for a rollback); each collector's `Bus` listens on a dedicated connection and acts
for the streams and watchers it holds. Periodic jobs take `run_once` so one collector does a
round. Both are scoped to the store's schema and are no-ops on SQLite (one process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from collector import diagnostics
from remdiag.v1 import agent_pb2

if TYPE_CHECKING:
    from collector.config import CheckPolicySettings
    from collector.dispatch import Dispatcher
    from collector.store.runner import Store

log = logging.getLogger(__name__)

CHANNEL = "remdiag_dispatch"
QUEUED = "queued"
"""`queued <agent id>`: a request waits for this machine; whoever holds its stream sends it."""
CHANGED = "changed"
"""`changed <request id>`: a diagnostic's state changed; whoever watches it re-reads it."""
POLICY = "policy"
"""`policy <agent id>`: the machine's policy changed; whoever holds its stream sends it."""
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 30.0


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def announce(session: Session, kind: str, subject: str) -> None:
    """Tell every collector on this database and schema, when the transaction commits."""
    if _postgres(session):
        session.execute(
            text("SELECT pg_notify(:channel, current_schema() || ' ' || :message)"),
            {"channel": CHANNEL, "message": f"{kind} {subject}"},
        )


def run_once(session: Session, job: str) -> bool:
    """Whether this collector does `job` in this transaction: on PostgreSQL, False when another
    collector is doing it right now (it skips this round); always True on SQLite."""
    if not _postgres(session):
        return True
    taken = session.scalar(
        text(
            "SELECT pg_try_advisory_xact_lock("
            "hashtextextended('remdiag ' || current_schema() || ' ' || :job, 0))"
        ),
        {"job": job},
    )
    return bool(taken)


class Bus:
    """Listens for other collectors' announcements and acts on the ones about this process's
    streams (send what was queued) and watchers (publish the new state)."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        config_checks: Mapping[str, CheckPolicySettings] | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._config_checks = config_checks or {}
        self.backend_pid: int | None = None
        """The listening connection's server process, while connected."""

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff; at once on SQLite."""
        url = make_url(self._store.url)
        if url.get_backend_name() != "postgresql":
            return
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = RECONNECT_INITIAL_S
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    schema = await self._listen(conn)
                    self.backend_pid = conn.info.backend_pid
                    delay = RECONNECT_INITIAL_S
                    await self._catch_up()  # what was announced while nobody listened
                    async for note in conn.notifies():
                        where, _, message = note.payload.partition(" ")
                        if where == schema:
                            await self._handle(message)
                log.warning("dispatch bus: listening connection closed")
            except (psycopg.Error, OSError) as exc:
                log.warning("dispatch bus: %s; listening again in %.1f s", exc, delay)
            self.backend_pid = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _listen(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> str:
        await conn.execute(f"LISTEN {CHANNEL}")
        cursor = await conn.execute("SELECT current_schema()")
        row = await cursor.fetchone()
        return str(row[0]) if row else ""

    async def _catch_up(self) -> None:
        for agent_id in self._dispatcher.hub.held():
            await self._handle(f"{QUEUED} {agent_id}")
        for request_id in self._dispatcher.hub.watched():
            await self._handle(f"{CHANGED} {request_id}")

    async def _handle(self, message: str) -> None:
        kind, _, subject = message.partition(" ")
        hub = self._dispatcher.hub
        try:
            if kind == QUEUED and hub.holds(subject):
                await self._dispatcher.deliver_pending(subject)
            elif kind == CHANGED and hub.watching(subject):
                view = await self._store.run(lambda s: diagnostics.get(s, subject))
                if view is not None:
                    hub.publish(view)
            elif kind == POLICY and hub.holds(subject):
                # Imported here: policies reaches the store functions that import this module.
                from collector import policies

                checks = self._config_checks
                policy = await self._store.run(lambda s: policies.policy_for(s, subject, checks))
                if policy is not None:
                    hub.send(subject, agent_pb2.CollectorMessage(policy=policy))
        except Exception:  # one failed delivery must not stop the listening
            log.exception("dispatch bus: handling %r", message)
