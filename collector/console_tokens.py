"""Console tokens: a named technician or admin, created once in the clear, stored as SHA-256."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import ConsoleToken
from collector.tokens import MAX_LIFETIME, MAX_TOKEN_CHARS, MIN_LIFETIME, TokenState, hash_token

PREFIX = "rdconsole_"
"""Marks the secret as a remdiag console token (for people and for secret scanners)."""
LOCAL_ADMIN = "local-admin"
"""The admin token `remdiag up` makes for its own live view and the CLI beside it."""
MAX_NAME_CHARS = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


class Role(enum.StrEnum):
    """What a console token may do; an admin may do everything a technician may."""

    TECHNICIAN = "technician"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return self is Role.ADMIN or needed is Role.TECHNICIAN


@dataclass(frozen=True)
class Principal:
    """Who a console call speaks for: the name and role of its token."""

    name: str
    role: Role


@dataclass(frozen=True)
class NewConsoleToken:
    id: int
    secret: str
    """Shown once; the collector keeps only its hash."""
    name: str
    role: Role
    expires_at: datetime | None


@dataclass(frozen=True)
class ConsoleTokenView:
    id: int
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    state: TokenState


class ConsoleTokenError(ValueError):
    """A console token that cannot be made as asked (bad name, name taken, bad lifetime)."""


def create(
    session: Session, now: datetime, name: str, role: Role, lifetime: timedelta | None = None
) -> NewConsoleToken:
    """A new console token for `name` (unique among live tokens); `lifetime` None: no expiry.

    A token of the same name that has expired but was never revoked is revoked now: the name
    moves on to the new token.
    """
    if not _NAME.match(name) or len(name) > MAX_NAME_CHARS:
        raise ConsoleTokenError(
            f"token name {name!r}: 1 to {MAX_NAME_CHARS} letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if lifetime is not None and not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise ConsoleTokenError("a token lives between 1 minute and 366 days")
    same_name = session.scalars(
        select(ConsoleToken)
        .where(ConsoleToken.name == name, ConsoleToken.revoked_at.is_(None))
        .with_for_update()
    ).first()
    if same_name is not None:
        if _state(same_name, now) is TokenState.ACTIVE:
            raise ConsoleTokenError(
                f"a live token is named {name!r} already (token {same_name.id}): "
                "revoke it first (remdiag token revoke ID) or choose another name"
            )
        same_name.revoked_at = now
        session.flush()
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ConsoleToken(
        token_hash=hash_token(secret),
        name=name,
        role=role.value,
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    session.add(row)
    session.flush()
    return NewConsoleToken(row.id, secret, name, role, row.expires_at)


def authenticate(session: Session, secret: str, now: datetime) -> Principal | None:
    """The principal a live token `secret` speaks for; None when unknown, revoked or expired."""
    if not secret.startswith(PREFIX) or len(secret) > MAX_TOKEN_CHARS:
        return None
    row = session.scalars(
        select(ConsoleToken).where(ConsoleToken.token_hash == hash_token(secret))
    ).first()
    if row is None or _state(row, now) is not TokenState.ACTIVE:
        return None
    return Principal(row.name, Role(row.role))


def list_tokens(session: Session, now: datetime) -> list[ConsoleTokenView]:
    rows = session.scalars(select(ConsoleToken).order_by(ConsoleToken.id))
    return [
        ConsoleTokenView(r.id, r.name, Role(r.role), r.created_at, r.expires_at, _state(r, now))
        for r in rows
    ]


def revoke(session: Session, token_id: int, now: datetime) -> TokenState | None:
    """Revoke a console token; its state before (None: no such token)."""
    row = session.get(ConsoleToken, token_id, with_for_update=True)
    if row is None:
        return None
    before = _state(row, now)
    if row.revoked_at is None:
        row.revoked_at = now
    return before


def _state(row: ConsoleToken, now: datetime) -> TokenState:
    if row.revoked_at is not None:
        return TokenState.REVOKED
    if row.expires_at is not None and row.expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.ACTIVE


def ensure_local_admin(session: Session, now: datetime, current: str | None) -> str | None:
    """`remdiag up`'s own admin token: None when `current` is still the live local-admin
    token, else the secret of a new one (an older live local-admin token is revoked)."""
    found = authenticate(session, current, now) if current else None
    if found == Principal(LOCAL_ADMIN, Role.ADMIN):
        return None
    for row in session.scalars(
        select(ConsoleToken).where(
            ConsoleToken.name == LOCAL_ADMIN, ConsoleToken.revoked_at.is_(None)
        )
    ):
        row.revoked_at = now
    session.flush()
    return create(session, now, LOCAL_ADMIN, Role.ADMIN).secret
