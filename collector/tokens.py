"""Enrollment tokens: created once in the clear, stored as SHA-256, spent one use at a time."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collector.store.models import EnrollmentToken

PREFIX = "rdenroll_"
"""Marks the secret as a remdiag enrollment token (for people and for secret scanners)."""
MAX_TOKEN_CHARS = 256
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=366)
DEFAULT_LIFETIME = timedelta(hours=24)
"""Of an enrollment token created without --expires."""
MAX_USES = 1_000_000
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TokenState(enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used up"
    REVOKED = "revoked"


@dataclass(frozen=True)
class NewToken:
    id: int
    secret: str
    """Shown once to the admin; the collector keeps only its hash."""
    expires_at: datetime
    uses: int


@dataclass(frozen=True)
class TokenView:
    id: int
    created_at: datetime
    expires_at: datetime
    uses: int
    uses_left: int
    last_used_at: datetime | None
    state: TokenState


def hash_token(secret: str) -> str:
    # 256 random bits: a fast hash is as strong as a slow one, and lookups stay cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """'30m', '24h', '7d', '2w' (or seconds with 's') as a timedelta; ValueError when not."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as 30m, 24h, 7d or 2w, got {text!r}")
    duration = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not MIN_LIFETIME <= duration <= MAX_LIFETIME:
        raise ValueError(f"{text!r} is out of range: between 1m and 366d")
    return duration


def create(session: Session, now: datetime, lifetime: timedelta, uses: int) -> NewToken:
    """A new enrollment token valid for `lifetime` and `uses` enrollments."""
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise ValueError("a token lives between 1 minute and 366 days")
    if not 1 <= uses <= MAX_USES:
        raise ValueError(f"a token allows between 1 and {MAX_USES} uses")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = EnrollmentToken(
        token_hash=hash_token(secret),
        created_at=now,
        expires_at=now + lifetime,
        uses=uses,
        uses_left=uses,
    )
    session.add(row)
    session.flush()
    return NewToken(row.id, secret, row.expires_at, uses)


def list_tokens(session: Session, now: datetime) -> list[TokenView]:
    rows = session.scalars(select(EnrollmentToken).order_by(EnrollmentToken.id))
    return [
        TokenView(
            r.id, r.created_at, r.expires_at, r.uses, r.uses_left, r.last_used_at, _state(r, now)
        )
        for r in rows
    ]


def revoke(session: Session, token_id: int, now: datetime) -> TokenState | None:
    """Revoke a token; its state before (None: no such token). Revoking twice is harmless."""
    row = session.get(EnrollmentToken, token_id, with_for_update=True)
    if row is None:
        return None
    before = _state(row, now)
    if row.revoked_at is None:
        row.revoked_at = now
    return before


def spend(session: Session, secret: str, now: datetime) -> bool:
    """Spend one use of the token `secret`, atomically: True if it was valid.

    One conditional UPDATE, so concurrent enrollments can never spend more uses than there
    are. The caller's transaction owns it: if the enrollment fails, the use comes back.
    """
    if not secret or len(secret) > MAX_TOKEN_CHARS:
        return False
    spent = session.execute(
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == hash_token(secret),
            EnrollmentToken.uses_left > 0,
            EnrollmentToken.revoked_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(uses_left=EnrollmentToken.uses_left - 1, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


def why_refused(session: Session, secret: str, now: datetime) -> str:
    """For the collector's log (never for the caller): why `secret` did not enroll."""
    if not secret or len(secret) > MAX_TOKEN_CHARS:
        return "no token" if not secret else "token too long"
    row = session.scalars(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == hash_token(secret))
    ).first()
    if row is None:
        return "unknown token"
    return f"token {row.id} is {_state(row, now).value}"


def _state(row: EnrollmentToken, now: datetime) -> TokenState:
    if row.revoked_at is not None:
        return TokenState.REVOKED
    if row.uses_left <= 0:
        return TokenState.USED_UP
    if row.expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.ACTIVE
