"""A real collector on a loopback port, over SQLite and PostgreSQL, and a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from collector.config import CollectorSettings, TicketSettings
from collector.server import Collector, serve


@pytest.fixture
async def collector(store_url: str) -> AsyncIterator[Collector]:
    settings = CollectorSettings(
        listen="127.0.0.1:0",
        database_url=store_url,
        tickets=TicketSettings(fails_before_ticket=3, passes_before_resolve=2),
    )
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def channel(collector: Collector) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{collector.port}") as opened:
        yield opened
