"""[limits]: sizes, lengths and per-agent rates are configurable, and a violation is a clear
INVALID_ARGUMENT or RESOURCE_EXHAUSTED with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from collector.config import CollectorSettings
from collector.limits import LimitSettings
from collector.server import Collector, serve
from remdiag.v1 import agent_pb2, agent_pb2_grpc
from tests.collector.factories import batch, counts, heartbeat, hello, pb_result
from tests.collector.test_gateway import enrolled_metadata

LIMITS = LimitSettings(
    max_message_bytes=64 * 1024,
    max_batch_results=5,
    max_text_chars=100,
    max_id_chars=32,
    max_results_per_minute=8,
    max_messages_per_minute=20,
)


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            limits=LIMITS,
        )
    )
    yield running
    await running.stop()


async def refused(
    channel: grpc.aio.Channel, messages: list[agent_pb2.AgentMessage], metadata: object
) -> grpc.aio.AioRpcError:
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)

    async def read_to_the_end() -> None:
        async for _ in call:
            pass

    reading = asyncio.ensure_future(read_to_the_end())
    for message in messages:
        if reading.done():
            break
        try:
            await call.write(message)
        except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
            break  # the stream ended: its status is what the reader gets
        # A write still in flight when the collector ends the stream fails in grpc's client,
        # which then reports INTERNAL instead of the collector's status: let a refusal land
        # before the next write.
        await asyncio.wait({reading}, timeout=0.05)
    if not reading.done():
        await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await reading
    return raised.value


@pytest.fixture
async def channel(limited: Collector) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{limited.port}") as opened:
        yield opened


def long_summary() -> agent_pb2.AgentMessage:
    result = pb_result()
    result.summary = "x" * 101
    return batch(1, result)


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (batch(1, *[pb_result() for _ in range(6)]), "at most 5 results"),
        (long_summary(), "summary is longer than 100"),
        (batch(1, pb_result(check_id="c" * 33)), "check_id is longer than 32"),
    ],
)
async def test_over_a_configured_bound_is_invalid_and_writes_nothing(
    limited: Collector, channel: grpc.aio.Channel, message: agent_pb2.AgentMessage, named: str
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    error = await refused(channel, [hello(agent_id), message], metadata)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in (error.details() or "")
    assert (await limited.store.run(counts))["check_results"] == 0


async def test_a_message_over_the_size_limit_is_resource_exhausted(
    limited: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    big = batch(1, pb_result())
    big.results.results[0].thresholds.update({"padding": "p" * 70_000})
    error = await refused(channel, [hello(agent_id), big], metadata)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await limited.store.run(counts))["check_results"] == 0


async def test_an_agent_over_its_rate_is_told_to_slow_down(
    limited: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    # 8 results a minute: two batches of 4 pass, the third is refused before any write.
    messages = [hello(agent_id), *(batch(n, *[pb_result()] * 4) for n in (1, 2, 3))]
    error = await refused(channel, messages, metadata)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too many results per minute" in (error.details() or "")
    assert (await limited.store.run(counts))["check_results"] == 8

    # The rate belongs to the agent, not the stream: reconnecting does not reset it.
    chatty = [hello(agent_id), *(heartbeat() for _ in range(30))]
    error = await refused(channel, chatty, metadata)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too many messages per minute" in (error.details() or "")
