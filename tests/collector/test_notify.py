"""collector/notify: signature, backoff and payload (pure); the outbox written with the event,
fanned out, retried with the same key, given up, pruned, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector import desk, notify
from collector.config import CollectorSettings
from collector.engine import TicketRules
from collector.ingest import ingest_batch
from collector.notify import Notifier, NotifySettings, Webhook
from collector.store.models import NotificationDelivery, NotificationOutbox, Ticket, TicketEvent
from collector.store.runner import Store
from collector.timeline import record
from remdiag.configfile import load_settings
from remdiag.vocabulary import CheckStatus
from tests.collector.factories import NOW, enrolled, result

SECRET = "a-shared-secret-of-some-length"
URL = "http://127.0.0.1:9/hooks"
OTHER_URL = "http://127.0.0.1:9/other"


def webhook(url: str = URL, **fields: object) -> Webhook:
    return Webhook.model_validate({"url": url, "secret": SECRET, **fields})


def settings(*webhooks: Webhook, **fields: object) -> NotifySettings:
    return NotifySettings.model_validate(
        {"webhooks": webhooks or (webhook(),), "backoff_base_seconds": 10, **fields}
    )


# Pure parts.


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"opened"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert notify.signature(SECRET, "1700000000", body) == f"sha256={expected}"
    header = notify.signature(SECRET, "1700000000", body)
    assert notify.verify(SECRET, "1700000000", body, header)
    assert not notify.verify(SECRET, "1700000001", body, header)
    assert not notify.verify(SECRET, "1700000000", body + b" ", header)
    assert not notify.verify("another-secret-entirely", "1700000000", body, header)


def test_headers_carry_event_key_timestamp_and_a_verifiable_signature() -> None:
    body = notify.encode_body({"id": "k", "event": "resolved"})
    sent = notify.headers(webhook(), "key-1", "resolved", body, NOW)
    assert sent["Content-Type"] == "application/json"
    assert sent["X-Remdiag-Event"] == "resolved"
    assert sent["Idempotency-Key"] == "key-1"
    assert sent["X-Remdiag-Timestamp"] == str(int(NOW.timestamp()))
    assert notify.verify(SECRET, sent["X-Remdiag-Timestamp"], body, sent["X-Remdiag-Signature"])


def test_body_is_the_same_bytes_whatever_the_key_order() -> None:
    assert notify.encode_body({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    assert notify.encode_body({"a": [1, 2], "b": 1}) == notify.encode_body({"b": 1, "a": [1, 2]})


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    ceilings = [notify.backoff_ceiling(n, 5, 60) for n in range(1, 7)]
    assert ceilings == [5, 10, 20, 40, 60, 60]
    assert notify.backoff_ceiling(10_000, 5, 60) == 60


def test_retry_delay_is_full_jitter_below_the_ceiling() -> None:
    rng = random.Random(7)
    config = settings(backoff_base_seconds=5, backoff_cap_seconds=60)
    delays = [notify.retry_delay(3, config, rng) for _ in range(200)]
    assert all(0 <= delay <= 20 for delay in delays)
    assert len(set(delays)) == len(delays)  # spread out, not in step
    assert min(delays) < 5 and max(delays) > 15


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "http:// or https://"),
        ({"url": "127.0.0.1:8080/hooks"}, "http:// or https://"),
        ({"url": "http:///nohost"}, "http:// or https://"),
        ({"secret": "short"}, "at least 16"),
        ({"events": ["opened", "commented"]}, "unknown events"),
        ({"timeout_seconds": 0}, "greater than 0"),
    ],
)
def test_a_bad_webhook_is_refused(fields: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Webhook.model_validate({"url": URL, "secret": SECRET, **fields})


def test_each_url_once_and_the_secret_never_shown() -> None:
    with pytest.raises(ValidationError, match="each url once"):
        settings(webhook(), webhook())
    assert SECRET not in repr(settings()) and SECRET not in str(settings())


def test_webhooks_load_from_the_collector_config(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(
        "[notify]\nmax_attempts = 3\n"
        f'[[notify.webhooks]]\nurl = "{URL}"\nsecret = "{SECRET}"\nevents = ["opened"]\n',
        encoding="utf-8",
    )
    loaded = load_settings(CollectorSettings, path).notify
    assert loaded.max_attempts == 3
    (only,) = loaded.webhooks
    assert only.url == URL and only.events == ("opened",)
    assert only.secret.get_secret_value() == SECRET
    assert CollectorSettings().notify.webhooks == ()


# The store, on SQLite and PostgreSQL.


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def open_ticket(store: Store, n: int = 1) -> int:
    agent_id = store.call(lambda s: enrolled(s, n)).agent_id
    for sequence in (1, 2, 3):
        store.call(
            lambda s, q=sequence: ingest_batch(
                s, agent_id, q, [result(CheckStatus.CRITICAL)], TicketRules(), NOW
            )
        )
    ticket_id: int = store.call(
        lambda s: s.scalars(select(Ticket.id).where(Ticket.agent_id == agent_id)).one()
    )
    return ticket_id


def resolve(store: Store, ticket_id: int) -> None:
    ticket = store.call(lambda s: s.get(Ticket, ticket_id))
    assert ticket is not None
    for sequence in (4, 5):
        store.call(
            lambda s, q=sequence: ingest_batch(
                s, ticket.agent_id, q, [result(CheckStatus.OK)], TicketRules(), NOW
            )
        )


def outbox(store: Store) -> list[NotificationOutbox]:
    return store.call(
        lambda s: list(s.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))
    )


def deliveries(store: Store) -> list[NotificationDelivery]:
    return store.call(
        lambda s: list(s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))
    )


def test_notified_events_enter_the_outbox_with_a_snapshot_of_the_ticket(store: Store) -> None:
    ticket_id = open_ticket(store)
    store.call(lambda s: desk.sweep(s, NOW + timedelta(hours=2)))  # response deadline missed
    resolve(store, ticket_id)

    rows = outbox(store)
    assert [row.kind for row in rows] == ["opened", "breached", "resolved"]
    assert len({row.key for row in rows}) == 3
    opened, breached, resolved = (row.payload for row in rows)
    assert opened["id"] == rows[0].key and opened["event"] == "opened"
    assert opened["actor"] == "system" and "failed 3 times in a row" in opened["message"]
    assert opened["ticket"]["id"] == ticket_id and opened["ticket"]["hostname"] == "pc-1"
    assert opened["ticket"]["state"] == "new" and opened["ticket"]["tier"] == "L1"
    assert opened["ticket"]["priority"] == "P2" and opened["ticket"]["category"] == "hardware"
    assert opened["at"] == NOW.isoformat()
    assert breached["ticket"]["tier"] == "L2" and breached["ticket"]["response_breached"]
    assert resolved["ticket"]["state"] == "resolved" and resolved["ticket"]["resolved_at"]
    assert all(row.dispatched_at is None for row in rows)


def test_other_events_stay_out_and_nothing_enters_without_its_event(store: Store) -> None:
    ticket_id = open_ticket(store)

    def comment(session: Session) -> None:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        record(session, ticket, NOW, "comment", "looked at it", actor="alice")

    def escalate_then_fail(session: Session) -> None:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        record(session, ticket, NOW, "escalated", "to L3", actor="alice")
        raise RuntimeError("the change failed after the event was recorded")

    store.call(comment)
    with pytest.raises(RuntimeError):
        store.call(escalate_then_fail)

    assert [row.kind for row in outbox(store)] == ["opened"]
    events = store.call(lambda s: list(s.scalars(select(TicketEvent.kind))))
    assert "comment" in events and "escalated" not in events


def test_dispatch_makes_one_delivery_per_interested_webhook_once(store: Store) -> None:
    ticket_id = open_ticket(store)
    resolve(store, ticket_id)
    config = settings(webhook(), webhook(OTHER_URL, events=["resolved"]))

    assert store.call(lambda s: notify.dispatch(s, config, NOW)) == 2
    assert store.call(lambda s: notify.dispatch(s, config, NOW)) == 0
    made = {(d.outbox_id, d.endpoint) for d in deliveries(store)}
    opened, resolved = (row.id for row in outbox(store))
    assert made == {(opened, URL), (resolved, URL), (resolved, OTHER_URL)}


def test_a_claimed_delivery_is_leased_then_due_again_if_no_outcome_came(store: Store) -> None:
    open_ticket(store)
    config = settings()
    store.call(lambda s: notify.dispatch(s, config, NOW))

    (first,) = store.call(lambda s: notify.claim(s, config, NOW))
    assert first.attempt == 1 and first.kind == "opened"
    assert json.loads(first.body)["id"] == first.key
    assert store.call(lambda s: notify.claim(s, config, NOW)) == []
    # The collector holding it died: after the lease, it is sent again with the same key.
    later = NOW + timedelta(seconds=config.webhooks[0].timeout_seconds + 31)
    (again,) = store.call(lambda s: notify.claim(s, config, later))
    assert again.key == first.key and again.body == first.body and again.attempt == 2


def test_deliveries_to_a_webhook_no_longer_configured_wait(store: Store) -> None:
    open_ticket(store)
    store.call(lambda s: notify.dispatch(s, settings(), NOW))
    assert store.call(lambda s: notify.claim(s, settings(webhook(OTHER_URL)), NOW)) == []
    assert store.call(lambda s: notify.claim(s, NotifySettings(), NOW)) == []


def test_concurrent_collectors_never_claim_the_same_delivery(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: SKIP LOCKED is a PostgreSQL matter")
    for n in (1, 2):
        open_ticket(store, n)
    config = settings()
    store.call(lambda s: notify.dispatch(s, config, NOW))
    with store.sessions.begin() as first, store.sessions.begin() as second:
        taken = notify.claim(first, config, NOW)
        first.flush()
        assert len(taken) == 2
        assert notify.claim(second, config, NOW) == []


class Receiver:
    """A recording fake for httpx: answers with the statuses given, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    @property
    def keys(self) -> list[str]:
        return [request.headers["Idempotency-Key"] for request in self.requests]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def notifier(store: Store, receiver: Receiver, clock: Clock, config: NotifySettings) -> Notifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    return Notifier(store, config, client=client, clock=clock, rng=random.Random(1))


async def test_a_failed_delivery_is_retried_after_its_backoff_with_the_same_key(
    store: Store,
) -> None:
    ticket_id = open_ticket(store)
    receiver, clock = Receiver(500, 503), Clock()
    worker = notifier(store, receiver, clock, settings())

    assert await worker.step() == 1
    (delivery,) = deliveries(store)
    assert delivery.attempts == 1 and delivery.last_error == "HTTP 500"
    assert delivery.delivered_at is None and delivery.next_attempt_at > NOW
    assert delivery.next_attempt_at <= NOW + timedelta(seconds=10)
    assert await worker.step() == 0  # not due yet

    clock.now = NOW + timedelta(seconds=10)
    assert await worker.step() == 1  # 503
    (delivery,) = deliveries(store)
    assert delivery.attempts == 2
    assert delivery.next_attempt_at <= clock.now + timedelta(seconds=20)

    clock.now = NOW + timedelta(seconds=30)
    assert await worker.step() == 1
    resolve(store, ticket_id)
    assert await worker.step() == 1  # the resolved event, first time lucky
    clock.now = NOW + timedelta(days=1)
    assert await worker.step() == 0
    await worker.aclose()

    opened, resolved = (row.key for row in outbox(store))
    assert receiver.keys == [opened, opened, opened, resolved]
    assert all(d.delivered_at is not None and d.last_error == "" for d in deliveries(store))
    first = receiver.requests[0]
    assert first.method == "POST" and str(first.url) == URL
    assert first.headers["X-Remdiag-Event"] == "opened"
    assert notify.verify(
        SECRET,
        first.headers["X-Remdiag-Timestamp"],
        first.content,
        first.headers["X-Remdiag-Signature"],
    )
    assert json.loads(first.content)["ticket"]["id"] == ticket_id
    assert len({request.content for request in receiver.requests[:3]}) == 1


async def test_after_max_attempts_a_delivery_is_given_up_and_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    open_ticket(store)
    receiver, clock = Receiver(*[500] * 10), Clock()
    worker = notifier(store, receiver, clock, settings(max_attempts=3))

    with caplog.at_level(logging.WARNING, logger="collector.notify"):
        for hours in range(5):
            clock.now = NOW + timedelta(hours=hours)
            await worker.step()
    await worker.aclose()

    assert len(receiver.requests) == 3
    (delivery,) = deliveries(store)
    assert delivery.attempts == 3 and delivery.gave_up_at is not None
    assert delivery.delivered_at is None and delivery.last_error == "HTTP 500"
    gave_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(gave_up) == 1 and "gave up" in gave_up[0].getMessage()


async def test_a_connection_error_is_a_failed_attempt(store: Store) -> None:
    open_ticket(store)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    worker = Notifier(store, settings(), client=client, clock=Clock())
    assert await worker.step() == 1
    await client.aclose()
    (delivery,) = deliveries(store)
    assert delivery.attempts == 1 and "ConnectError" in delivery.last_error


async def test_a_receiver_that_never_answers_is_a_failed_attempt(store: Store) -> None:
    open_ticket(store)

    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    client = httpx.AsyncClient(transport=httpx.MockTransport(silent))
    worker = Notifier(store, settings(webhook(timeout_seconds=0.05)), client=client, clock=Clock())
    assert await worker.step() == 1
    await client.aclose()
    (delivery,) = deliveries(store)
    assert delivery.attempts == 1 and delivery.last_error == "no answer within 0.05 s"


def test_prune_deletes_only_old_finished_notifications(store: Store) -> None:
    for n in (1, 2, 3):
        open_ticket(store, n)
    config = settings(keep_days=1)
    store.call(lambda s: notify.dispatch(s, config, NOW))
    done, given_up, pending = deliveries(store)

    def finish(session: Session) -> None:
        session.get(NotificationDelivery, done.id).delivered_at = NOW  # type: ignore[union-attr]
        session.get(NotificationDelivery, given_up.id).gave_up_at = NOW  # type: ignore[union-attr]

    store.call(finish)
    assert store.call(lambda s: notify.prune(s, config, NOW + timedelta(hours=23))) == 0
    assert store.call(lambda s: notify.prune(s, config, NOW + timedelta(days=2))) == 2
    assert [d.id for d in deliveries(store)] == [pending.id]
    assert store.call(lambda s: s.scalar(select(func.count(NotificationOutbox.id)))) == 1


def test_prune_does_not_wait_for_deliveries_to_a_webhook_no_longer_configured(
    store: Store,
) -> None:
    open_ticket(store)
    removed, kept = webhook("https://removed.example/hook"), webhook("https://kept.example/hook")
    store.call(lambda s: notify.dispatch(s, settings(removed, kept, keep_days=1), NOW))
    assert len(deliveries(store)) == 2  # both pending
    delivered = next(d for d in deliveries(store) if d.endpoint == kept.url)
    store.call(lambda s: setattr(s.get(NotificationDelivery, delivered.id), "delivered_at", NOW))
    later = NOW + timedelta(days=2)
    # While the other webhook is configured its delivery is due: the notification stays.
    assert store.call(lambda s: notify.prune(s, settings(removed, kept, keep_days=1), later)) == 0
    # Removed from the configuration, nobody will ever send it: the notification goes.
    assert store.call(lambda s: notify.prune(s, settings(kept, keep_days=1), later)) == 1
    assert deliveries(store) == []
