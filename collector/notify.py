"""Outbound webhooks on ticket events, through a transactional outbox.

`timeline.record` calls `enqueue` for the notified kinds, in the transaction that changes the
ticket: the event and its notification commit together or not at all. A `Notifier` (one task of
the collector) then fans each outbox row out to the webhooks that want its kind, and delivers:
JSON body, HMAC-SHA256 signature, the same `Idempotency-Key` on every attempt, exponential
backoff with full jitter until `max_attempts`, then gives up (logged, kept in the store).

Delivery is at least once: a collector killed after the receiver answered but before it stored
the outcome sends again after `LEASE_MARGIN_SECONDS`, with the same key, so the receiver drops it.
A collector stopped normally finishes the deliveries in flight first. With several collectors
on one PostgreSQL, rows are claimed with SKIP LOCKED: each attempt is made by one of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from collector.store.models import Agent, NotificationDelivery, NotificationOutbox, Ticket
from collector.store.runner import Store
from remdiag.vocabulary import Category, Priority, Severity, TicketState, Tier

log = logging.getLogger(__name__)

NOTIFIED_KINDS = ("opened", "escalated", "breached", "resolved", "reopened")
"""Ticket event kinds that go to webhooks; the others (comments, assignment...) stay inside."""
SIGNATURE_HEADER = "X-Remdiag-Signature"
TIMESTAMP_HEADER = "X-Remdiag-Timestamp"
EVENT_HEADER = "X-Remdiag-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
LEASE_MARGIN_SECONDS = 30.0
"""A claimed delivery is due again this long after its timeout if no outcome was stored."""
BATCH = 50


class Webhook(BaseModel):
    """One receiver: where, the shared secret it verifies signatures with, which events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(max_length=2048)
    """http:// or https:// URL the events are POSTed to."""
    secret: SecretStr = Field(min_length=16, max_length=1024)
    """Key of the HMAC-SHA256 signature (X-Remdiag-Signature)."""
    events: tuple[str, ...] = NOTIFIED_KINDS
    timeout_seconds: float = Field(10.0, gt=0, le=120, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(NOTIFIED_KINDS))
        if unknown:
            raise ValueError(f"unknown events {unknown}: choose from {list(NOTIFIED_KINDS)}")
        return value


class NotifySettings(BaseModel):
    """[notify]: webhooks and how deliveries are retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[Webhook, ...] = Field((), max_length=20)
    max_attempts: int = Field(15, ge=1, le=100)
    """Attempts per event and webhook before giving up."""
    backoff_base_seconds: float = Field(5.0, gt=0, le=3600, allow_inf_nan=False)
    """The wait after the first failure is drawn from 0..base, then 0..2*base, 0..4*base, ..."""
    backoff_cap_seconds: float = Field(3600.0, gt=0, le=86400, allow_inf_nan=False)
    """... never more than this."""
    poll_seconds: float = Field(1.0, ge=0.01, le=60, allow_inf_nan=False)
    """How often the outbox is looked at for new and due deliveries."""
    keep_days: float = Field(30.0, gt=0, le=3650, allow_inf_nan=False)
    """Delivered or abandoned notifications are deleted after this many days."""

    @model_validator(mode="after")
    def _distinct_urls(self) -> NotifySettings:
        urls = [webhook.url for webhook in self.webhooks]
        if len(set(urls)) != len(urls):
            raise ValueError("webhooks: each url once")
        return self


# Pure parts: payload, body, signature, backoff.


def event_payload(
    key: str,
    ticket: Ticket,
    hostname: str,
    kind: str,
    message: str,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    """The JSON document a webhook receives: the event and the ticket as it stands after it."""
    return {
        "id": key,
        "event": kind,
        "at": _iso(at),
        "actor": actor,
        "message": message,
        "ticket": {
            "id": ticket.id,
            "title": ticket.title,
            "agent_id": ticket.agent_id,
            "hostname": hostname,
            "check_id": ticket.check_id,
            "category": Category(ticket.category).label,
            "severity": Severity(ticket.severity).label,
            "state": TicketState(ticket.state).label,
            "priority": Priority(ticket.priority).name,
            "tier": Tier(ticket.tier).name,
            "assignee": ticket.assignee,
            "opened_at": _iso(ticket.opened_at),
            "resolved_at": _iso(ticket.resolved_at),
            "respond_by": _iso(ticket.respond_by),
            "resolve_by": _iso(ticket.resolve_by),
            "response_breached": ticket.response_breached_at is not None,
            "resolution_breached": ticket.resolution_breached_at is not None,
        },
    }


def encode_body(payload: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the same bytes on every attempt."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "timestamp.body">`, the X-Remdiag-Signature value."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (it should also refuse timestamps far from its clock)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def headers(webhook: Webhook, key: str, kind: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "remdiag-collector",
        EVENT_HEADER: kind,
        IDEMPOTENCY_HEADER: key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(webhook.secret.get_secret_value(), timestamp, body),
    }


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after failed attempt `attempt` (1, 2, ...): base * 2^(attempt-1), capped."""
    return min(cap, base * 2.0 ** min(attempt - 1, 64))


def retry_delay(attempt: int, settings: NotifySettings, rng: random.Random) -> float:
    """Full jitter: uniform in 0..ceiling, so many failed deliveries do not retry in step."""
    ceiling = backoff_ceiling(attempt, settings.backoff_base_seconds, settings.backoff_cap_seconds)
    return rng.uniform(0.0, ceiling)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


# Store work: each function runs in the caller's transaction (Store.run / Store.call).


def enqueue(
    session: Session, ticket: Ticket, now: datetime, kind: str, message: str, actor: str
) -> None:
    """Put a notified event in the outbox, in the transaction that records it."""
    if kind not in NOTIFIED_KINDS:
        return
    agent = session.get(Agent, ticket.agent_id)
    key = str(uuid.uuid4())
    payload = event_payload(key, ticket, agent.hostname if agent else "", kind, message, actor, now)
    session.add(
        NotificationOutbox(key=key, ticket_id=ticket.id, kind=kind, payload=payload, created_at=now)
    )


def dispatch(session: Session, settings: NotifySettings, now: datetime) -> int:
    """Fan new outbox rows out to the webhooks that want their kind; how many rows."""
    rows = list(
        session.scalars(
            select(NotificationOutbox)
            .where(NotificationOutbox.dispatched_at.is_(None))
            .order_by(NotificationOutbox.id)
            .limit(BATCH * 10)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        for webhook in settings.webhooks:
            if row.kind in webhook.events:
                session.add(
                    NotificationDelivery(
                        outbox_id=row.id, endpoint=webhook.url, next_attempt_at=now
                    )
                )
        row.dispatched_at = now
    return len(rows)


@dataclass(frozen=True)
class Attempt:
    """A claimed delivery: what to send where, and which attempt this is."""

    delivery_id: int
    url: str
    key: str
    kind: str
    body: bytes
    attempt: int


def claim(session: Session, settings: NotifySettings, now: datetime) -> list[Attempt]:
    """Take the due deliveries (locking them against other collectors) and lease them out."""
    webhooks = {webhook.url: webhook for webhook in settings.webhooks}
    if not webhooks:
        return []
    rows = session.execute(
        select(NotificationDelivery, NotificationOutbox)
        .join(NotificationOutbox, NotificationDelivery.outbox_id == NotificationOutbox.id)
        .where(
            NotificationDelivery.delivered_at.is_(None),
            NotificationDelivery.gave_up_at.is_(None),
            NotificationDelivery.next_attempt_at <= now,
            NotificationDelivery.endpoint.in_(webhooks),
        )
        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(BATCH)
        .with_for_update(of=NotificationDelivery, skip_locked=True)
    ).all()
    attempts = []
    for delivery, outbox in rows:
        webhook = webhooks[delivery.endpoint]
        delivery.attempts += 1
        lease = webhook.timeout_seconds + LEASE_MARGIN_SECONDS
        delivery.next_attempt_at = now + timedelta(seconds=lease)
        attempts.append(
            Attempt(
                delivery.id,
                delivery.endpoint,
                outbox.key,
                outbox.kind,
                encode_body(outbox.payload),
                delivery.attempts,
            )
        )
    return attempts


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    error: str | None
    """None: delivered (2xx)."""


def settle(
    session: Session,
    outcomes: Sequence[Outcome],
    settings: NotifySettings,
    now: datetime,
    rng: random.Random,
) -> None:
    """Store what happened: delivered, due again after a backoff, or given up."""
    for outcome in outcomes:
        attempt = outcome.attempt
        delivery = session.get(NotificationDelivery, attempt.delivery_id)
        if delivery is None or delivery.delivered_at is not None:
            continue
        if outcome.error is None:
            delivery.delivered_at = now
            delivery.last_error = ""
            log.debug("webhook %s: delivered %s %s", attempt.url, attempt.kind, attempt.key)
            continue
        delivery.last_error = outcome.error[:1000]
        if attempt.attempt >= settings.max_attempts:
            delivery.gave_up_at = now
            log.error(
                "webhook %s: gave up on %s event %s after %d attempts: %s",
                attempt.url,
                attempt.kind,
                attempt.key,
                attempt.attempt,
                outcome.error,
            )
        else:
            delay = retry_delay(attempt.attempt, settings, rng)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            log.warning(
                "webhook %s: %s event %s failed (attempt %d of %d, next in %.1f s): %s",
                attempt.url,
                attempt.kind,
                attempt.key,
                attempt.attempt,
                settings.max_attempts,
                delay,
                outcome.error,
            )


def prune(session: Session, settings: NotifySettings, now: datetime) -> int:
    """Delete notifications older than keep_days with nothing left to deliver. A delivery to a
    webhook no longer configured is never attempted again (`claim` skips it), so it does not
    keep its notification: else a removed webhook's backlog would stay in the store for good."""
    cutoff = now - timedelta(days=settings.keep_days)
    pending = exists().where(
        NotificationDelivery.outbox_id == NotificationOutbox.id,
        NotificationDelivery.delivered_at.is_(None),
        NotificationDelivery.gave_up_at.is_(None),
        NotificationDelivery.endpoint.in_([webhook.url for webhook in settings.webhooks]),
    )
    old = select(NotificationOutbox.id).where(NotificationOutbox.dispatched_at < cutoff, ~pending)
    ids = list(session.scalars(old.limit(1000)))
    if ids:
        session.execute(delete(NotificationDelivery).where(NotificationDelivery.outbox_id.in_(ids)))
        session.execute(delete(NotificationOutbox).where(NotificationOutbox.id.in_(ids)))
    return len(ids)


# Effects: the worker.


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """Delivers the outbox until cancelled; a cancelled worker first settles what is in flight."""

    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._rng = rng or random.Random()
        self._webhooks = {webhook.url: webhook for webhook in settings.webhooks}
        self._last_prune: datetime | None = None

    async def run(self) -> None:
        try:
            while True:
                step = asyncio.ensure_future(self.step())
                try:
                    await asyncio.shield(step)
                except asyncio.CancelledError:
                    # Let deliveries in flight store their outcome: a receiver that answered
                    # must not get the same event again after a normal restart.
                    grace = max((w.timeout_seconds for w in self.settings.webhooks), default=0)
                    await asyncio.wait([step], timeout=grace + 5)
                    if not step.done():
                        step.cancel()
                    elif not step.cancelled() and step.exception() is not None:
                        log.error("notifications: the last round failed: %s", step.exception())
                    raise
                except Exception:
                    log.exception("notifications: delivery round failed; trying again")
                await asyncio.sleep(self.settings.poll_seconds)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def step(self) -> int:
        """One round: fan out new events, send what is due, store the outcomes; how many sent."""
        now = self._clock()
        await self.store.run(lambda s: dispatch(s, self.settings, now))
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            self._last_prune = now
            await self.store.run(lambda s: prune(s, self.settings, now))
        attempts = await self.store.run(lambda s: claim(s, self.settings, now))
        if not attempts:
            return 0
        outcomes = await asyncio.gather(*(self._send(attempt) for attempt in attempts))
        settled = self._clock()
        await self.store.run(lambda s: settle(s, outcomes, self.settings, settled, self._rng))
        return len(attempts)

    async def _send(self, attempt: Attempt) -> Outcome:
        webhook = self._webhooks[attempt.url]
        if self._client is None:
            self._client = httpx.AsyncClient()
        sent = headers(webhook, attempt.key, attempt.kind, attempt.body, self._clock())
        try:
            # httpx's timeout bounds each phase (connect, each read...); this bounds the whole.
            async with asyncio.timeout(webhook.timeout_seconds):
                response = await self._client.post(
                    webhook.url, content=attempt.body, headers=sent, timeout=webhook.timeout_seconds
                )
        except TimeoutError:
            return Outcome(attempt, f"no answer within {webhook.timeout_seconds:g} s")
        except Exception as exc:  # whatever fails, it is this attempt's failure, not the worker's
            return Outcome(attempt, f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))
        if response.is_success:
            return Outcome(attempt, None)
        return Outcome(attempt, f"HTTP {response.status_code}")
