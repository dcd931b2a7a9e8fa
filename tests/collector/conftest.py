"""A real collector on a loopback port, over SQLite and PostgreSQL, and a channel to it; the
people who hold console tokens there (PEOPLE), and the admin token the channel carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy.orm import Session

from collector.config import CollectorSettings, TicketSettings
from collector.console_tokens import PREFIX, Role
from collector.server import Collector, serve
from collector.store.models import ConsoleToken
from collector.tokens import hash_token

PEOPLE = {
    "admin": Role.ADMIN,
    "alice": Role.TECHNICIAN,
    "bob": Role.TECHNICIAN,
    "carol": Role.TECHNICIAN,
    "dave": Role.TECHNICIAN,
    "erin": Role.TECHNICIAN,
    "frank": Role.TECHNICIAN,
}
"""The console tokens every test collector has: `token_of(name)` is the secret."""
CONSOLE_PREFIX = "/remdiag.v1.ConsoleService/"


def token_of(name: str) -> str:
    return f"{PREFIX}test-{name}"


def as_(name: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that speaks as `name` (one of PEOPLE)."""
    return (("authorization", f"Bearer {token_of(name)}"),)


def add_people(session: Session) -> None:
    """PEOPLE's console tokens, with known secrets (stored hashed, like any token)."""
    for name, role in PEOPLE.items():
        session.add(
            ConsoleToken(
                token_hash=hash_token(token_of(name)),
                name=name,
                role=role.value,
                created_at=datetime.now(UTC),
            )
        )


class AdminToken(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Console calls without an `authorization` header speak as PEOPLE's admin."""

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        method = details.method
        name = method.decode() if isinstance(method, bytes) else method
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if name.startswith(CONSOLE_PREFIX) and "authorization" not in metadata:
            metadata.add("authorization", f"Bearer {token_of('admin')}")
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


@pytest.fixture
async def collector(store_url: str) -> AsyncIterator[Collector]:
    settings = CollectorSettings(
        listen="127.0.0.1:0",
        database_url=store_url,
        tickets=TicketSettings(fails_before_ticket=3, passes_before_resolve=2),
    )
    running = await serve(settings)
    await running.store.run(add_people)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def channel(collector: Collector) -> AsyncIterator[grpc.aio.Channel]:
    address = f"127.0.0.1:{collector.port}"
    async with grpc.aio.insecure_channel(address, interceptors=[AdminToken()]) as opened:
        yield opened
