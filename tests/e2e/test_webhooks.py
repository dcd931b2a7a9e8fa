"""Webhooks end to end: a real HTTP receiver on loopback gets every ticket event exactly once,
signed, across collector restarts, receiver failures and a stop with a delivery in flight."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import desk
from collector.config import CollectorSettings
from collector.engine import TicketRules
from collector.ingest import ingest_batch
from collector.notify import NotifySettings, Webhook
from collector.server import serve
from collector.store.models import NotificationDelivery, NotificationOutbox, Ticket
from collector.store.runner import Store
from collector.timeline import record
from collector.triage import DeskSettings
from remdiag.vocabulary import CheckStatus
from tests.collector.factories import enrolled, result
from tests.support import eventually

SECRET = "loopback-receiver-secret"


class Hooks:
    """What the receiver saw, and how it answers: "ok", "fail_first" (500 the first time a key
    arrives), "down" (503 always) or "hold" (wait for `release`, then 200)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mode = "ok"
        self.attempts: Counter[str] = Counter()
        self.successes: Counter[str] = Counter()
        self.kinds: dict[str, str] = {}
        self.refused: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def answer(self, headers: Any, body: bytes) -> int:
        timestamp = headers.get("X-Remdiag-Timestamp", "")
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        key = headers.get("Idempotency-Key", "")
        document = json.loads(body)
        with self.lock:
            if (
                not hmac.compare_digest(
                    f"sha256={expected.hexdigest()}", headers.get("X-Remdiag-Signature", "")
                )
                or abs(time.time() - int(timestamp)) > 300
            ):
                self.refused.append(key)
                return 401
            assert document["id"] == key and document["event"] == headers["X-Remdiag-Event"]
            self.kinds[key] = document["event"]
            self.attempts[key] += 1
            mode = self.mode
            if mode == "down" or (mode == "fail_first" and self.attempts[key] == 1):
                return 500 if mode == "fail_first" else 503
        if mode == "hold":
            self.holding.set()
            self.release.wait(30)
        with self.lock:
            self.successes[key] += 1
        return 200


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, str]]:
    seen = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = seen.answer(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen, f"http://127.0.0.1:{server.server_address[1]}/remdiag"
    finally:
        seen.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def settings(store_url: str, url: str) -> CollectorSettings:
    return CollectorSettings(
        listen="127.0.0.1:0",
        database_url=store_url,
        desk=DeskSettings(sweep_seconds=3600),
        notify=NotifySettings(
            webhooks=(
                Webhook.model_validate({"url": url, "secret": SECRET, "timeout_seconds": 10}),
            ),
            max_attempts=100,
            backoff_base_seconds=0.05,
            backoff_cap_seconds=0.2,
            poll_seconds=0.05,
        ),
    )


def enroll(session: Session, n: int, now: datetime) -> str:
    return enrolled(session, n, now).agent_id


def open_ticket(session: Session, agent_id: str, now: datetime) -> None:
    for sequence in (1, 2, 3):
        failing = result(CheckStatus.CRITICAL, observed_at=now)
        ingest_batch(session, agent_id, sequence, [failing], TicketRules(), now)


def resolve(session: Session, agent_id: str, now: datetime) -> None:
    for sequence in (4, 5):
        passing = result(CheckStatus.OK, observed_at=now)
        ingest_batch(session, agent_id, sequence, [passing], TicketRules(), now)


def escalate(session: Session, agent_id: str, now: datetime) -> None:
    ticket = session.scalars(select(Ticket).where(Ticket.agent_id == agent_id)).one()
    record(session, ticket, now, "escalated", "needs an expert", actor="alice")


def outbox_keys(session: Session) -> set[str]:
    return set(session.scalars(select(NotificationOutbox.key)))


def pending(session: Session) -> int:
    undelivered = select(NotificationDelivery).where(NotificationDelivery.delivered_at.is_(None))
    undispatched = select(NotificationOutbox).where(NotificationOutbox.dispatched_at.is_(None))
    return len(session.scalars(undelivered).all()) + len(session.scalars(undispatched).all())


async def all_delivered(store: Store, seen: Hooks) -> bool:
    keys = await store.run(outbox_keys)
    with seen.lock:
        received = set(seen.successes)
    return bool(keys) and received >= keys and await store.run(pending) == 0


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


async def test_each_event_reaches_the_receiver_exactly_once_across_restarts(
    store: Store, hooks: tuple[Hooks, str]
) -> None:
    seen, url = hooks
    config = settings(store.url, url)
    now = datetime.now(UTC)

    # Events committed while no collector runs: opened, resolved, opened, breached, escalated.
    one, two, three = (store.call(lambda s, n=n: enroll(s, n, now)) for n in (1, 2, 3))
    store.call(lambda s: open_ticket(s, one, now))
    store.call(lambda s: resolve(s, one, now))
    store.call(lambda s: open_ticket(s, two, now))
    store.call(lambda s: desk.sweep(s, now + timedelta(hours=2)))
    store.call(lambda s: escalate(s, two, now))
    first_keys = store.call(outbox_keys)
    assert len(first_keys) == 5

    # The receiver fails each event once: each is sent again, with the same key, and lands.
    seen.mode = "fail_first"
    collector = await serve(config)
    await eventually(lambda: all_delivered(store, seen), "the first events delivered")
    await collector.stop()
    assert set(seen.kinds.values()) == {"opened", "resolved", "breached", "escalated"}
    assert all(seen.attempts[key] == 2 for key in first_keys)

    # The receiver is down; more events; a collector tries, stops, and the next one delivers.
    seen.mode = "down"
    store.call(lambda s: resolve(s, two, now))
    store.call(lambda s: open_ticket(s, three, now))
    new_keys = store.call(outbox_keys) - first_keys
    collector = await serve(config)

    async def tried() -> bool:
        with seen.lock:
            return all(seen.attempts[key] >= 2 for key in new_keys)

    await eventually(tried, "attempts at the new events")
    await collector.stop()
    assert not seen.successes.keys() & new_keys
    seen.mode = "ok"
    collector = await serve(config)
    await eventually(lambda: all_delivered(store, seen), "the events committed while down")

    # A stop while a delivery is in flight lets it finish and stores that it was delivered.
    seen.mode = "hold"
    await store.run(lambda s: escalate(s, three, now))
    await eventually(lambda: asyncio.to_thread(seen.holding.is_set), "a delivery in flight")
    stopping = asyncio.create_task(collector.stop())
    await asyncio.sleep(0)  # stop() has cancelled the collector's tasks
    seen.release.set()
    await stopping
    assert store.call(pending) == 0

    collector = await serve(config)
    await eventually(lambda: all_delivered(store, seen), "everything delivered")
    await collector.stop()
    keys = store.call(outbox_keys)
    assert len(keys) == 8
    assert set(seen.successes) == keys
    assert all(count == 1 for count in seen.successes.values()), seen.successes
    assert seen.refused == []
