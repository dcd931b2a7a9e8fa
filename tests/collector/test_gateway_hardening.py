"""Hostile or broken upstream input: refused with INVALID_ARGUMENT, named, and nothing written.

Also: a stale stream must not mark a reconnected agent offline, and a busy port is one sentence.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from collector import fleet
from collector.config import CollectorSettings
from collector.gateway import REJECTED_SEQUENCE_HEADER
from collector.server import Collector, serve
from collector.store.models import AgentInventory
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from tests.collector.factories import batch, counts, hello, machine, pb_result
from tests.collector.test_gateway import agent_row, enrolled_metadata
from tests.support import eventually


def with_summary(text: str) -> common_pb2.CheckResult:
    result = pb_result()
    result.summary = text
    return result


def with_threshold(value: float) -> common_pb2.CheckResult:
    result = pb_result()
    result.thresholds.update({"max_used_percent": value})
    return result


def with_value(value: float) -> common_pb2.CheckResult:
    result = pb_result()
    result.values[0].number = value
    return result


def observed_out_of_range() -> common_pb2.CheckResult:
    result = pb_result()
    result.observed_at.seconds = 10**12  # year ~33,000
    return result


@pytest.mark.parametrize(
    ("sequence", "bad", "named"),
    [
        (1, with_summary("disk\x00full"), "NUL"),
        (1, with_threshold(float("inf")), "not finite"),
        (1, with_value(float("nan")), "not finite"),
        (1, observed_out_of_range(), "observed_at"),
        (2**63, pb_result(), "sequence"),
    ],
)
async def test_unstorable_input_is_refused_naming_the_sequence(
    collector: Collector,
    channel: grpc.aio.Channel,
    sequence: int,
    bad: common_pb2.CheckResult,
    named: str,
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
        iter([hello(agent_id), batch(sequence, bad)]), metadata=metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in call:
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in (refused.value.details() or "")
    trailing = dict(refused.value.trailing_metadata() or ())
    assert trailing[REJECTED_SEQUENCE_HEADER] == str(sequence)
    assert (await collector.store.run(counts))["check_results"] == 0


async def test_an_inventory_with_a_nul_is_refused(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    inventory = agent_pb2.AgentMessage(sequence=1, inventory=agent_pb2.Inventory(full=True))
    inventory.inventory.facts.update({"machine": {"hostname": "a\x00b"}})
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
        iter([hello(agent_id), inventory]), metadata=metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in call:
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await collector.store.run(lambda s: s.get(AgentInventory, agent_id)) is None


async def test_a_stale_stream_ending_leaves_the_new_one_connected(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    old = stub.Connect(metadata=metadata)
    await old.write(hello(agent_id))
    assert (await old.read()).WhichOneof("payload") == "welcome"
    new = stub.Connect(metadata=metadata)
    await new.write(hello(agent_id))
    assert (await new.read()).WhichOneof("payload") == "welcome"

    old.cancel()
    # The old stream's end is recorded once its handler has finished; the new one stays.
    await asyncio.sleep(0)
    await new.write(batch(1, pb_result()))
    assert (await new.read()).ack.acked_through == 1
    row = await agent_row(collector, agent_id)
    assert row.connected
    await new.done_writing()
    await eventually(
        lambda: _disconnected(collector, agent_id), "the new stream's end to be recorded"
    )


async def _disconnected(collector: Collector, agent_id: str) -> bool:
    return not (await agent_row(collector, agent_id)).connected


async def test_listening_on_a_busy_port_is_a_clear_error(
    collector: Collector, tmp_path: Path
) -> None:
    with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
        await serve(
            CollectorSettings(
                listen=f"127.0.0.1:{collector.port}",
                database_url=f"sqlite:///{tmp_path / 'second.db'}",
            )
        )


async def test_enrolling_again_ends_the_old_identitys_open_stream(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    old = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
    await old.write(hello(agent_id))
    assert (await old.read()).WhichOneof("payload") == "welcome"

    again, _ = await enrolled_metadata(channel)  # the same machine: its credential rotates
    assert again == agent_id
    # Read, not write, until the end: a write in flight as the collector ends the stream makes
    # grpc's client report INTERNAL instead of the collector's status (failed once in CI).
    with pytest.raises(grpc.aio.AioRpcError):
        while True:
            await old.read()
    assert await old.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "enrolled again" in (await old.details() or "")


async def test_an_identity_replaced_through_another_collector_is_ended_by_the_watcher(
    tmp_path: Path,
) -> None:
    """Another collector on the same database enrolled the machine again (written here straight
    to the store): this one notices within REPLACED_CHECK_TICKS rounds of its watcher."""
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            revocation_check_seconds=0.1,
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            agent_id, metadata = await enrolled_metadata(channel)
            old = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
            await old.write(hello(agent_id))
            assert (await old.read()).WhichOneof("payload") == "welcome"
            await running.store.run(lambda s: fleet.enroll(s, machine(1), datetime.now(UTC)))
            with pytest.raises(grpc.aio.AioRpcError):
                while True:
                    await old.read()
            assert await old.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "enrolled again" in (await old.details() or "")
    finally:
        await running.stop()
