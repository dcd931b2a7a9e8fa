"""AgentService (collector/gateway.py, collector/auth.py) and health on a real grpc.aio server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import update
from sqlalchemy.orm import Session

from collector.server import Collector
from collector.store.models import Agent
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from tests.collector.factories import (
    batch,
    counts,
    heartbeat,
    hello,
    identity,
    pb_result,
)
from tests.support import eventually

Metadata = tuple[tuple[str, str], ...]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def credentials(agent_id: str, credential: str) -> Metadata:
    return (("x-remdiag-agent-id", agent_id), ("authorization", f"Bearer {credential}"))


async def enroll(channel: grpc.aio.Channel, n: int = 1) -> agent_pb2.EnrollResponse:
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    request = agent_pb2.EnrollRequest(machine=identity(n), agent_version="0.1.0")
    response: agent_pb2.EnrollResponse = await stub.Enroll(request)
    return response


async def enrolled_metadata(channel: grpc.aio.Channel) -> tuple[str, Metadata]:
    response = await enroll(channel)
    return response.agent_id, credentials(response.agent_id, response.credential)


async def outcome(
    channel: grpc.aio.Channel, messages: Iterable[agent_pb2.AgentMessage], metadata: Metadata
) -> tuple[grpc.StatusCode, str]:
    """Send `messages`, close the stream, drain the replies; the call's status code and details."""
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(iter(list(messages)), metadata=metadata)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError:
        pass
    return await call.code(), await call.details() or ""


async def agent_row(collector: Collector, agent_id: str) -> Agent:
    found = await collector.store.run(lambda s: s.get(Agent, agent_id))
    assert found is not None
    return found


async def disconnected(collector: Collector, agent_id: str) -> Agent | None:
    """The agent's row once it is marked disconnected, None while it is connected."""
    row = await agent_row(collector, agent_id)
    return None if row.connected else row


async def test_enroll_gives_an_agent_id_and_a_credential(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    response = await enroll(channel)
    assert response.agent_id and len(response.credential) >= 32
    agent = await agent_row(collector, response.agent_id)
    assert (agent.hostname, agent.machine_id, agent.connected) == ("pc-1", "machine-1", False)
    assert response.credential not in agent.credential_hash


async def test_enrolling_the_same_machine_again_keeps_its_agent_id(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    first = await enroll(channel)
    second = await enroll(channel)
    other = await enroll(channel, n=2)
    assert second.agent_id == first.agent_id
    assert other.agent_id != first.agent_id
    assert second.credential != first.credential
    assert (await collector.store.run(counts))["agents"] == 2
    # The new credential replaces the old one.
    old = credentials(first.agent_id, first.credential)
    assert (await outcome(channel, [hello()], old))[0] == grpc.StatusCode.UNAUTHENTICATED
    new = credentials(second.agent_id, second.credential)
    assert (await outcome(channel, [hello()], new))[0] == grpc.StatusCode.OK


async def test_enroll_without_a_machine_id_is_invalid(channel: grpc.aio.Channel) -> None:
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    request = agent_pb2.EnrollRequest(machine=agent_pb2.MachineIdentity(hostname="pc-1"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Enroll(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "machine_id" in (refused.value.details() or "")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda agent_id, credential: (), id="no metadata"),
        pytest.param(lambda agent_id, credential: ((("x-remdiag-agent-id", agent_id),)), id="none"),
        pytest.param(lambda agent_id, credential: credentials(agent_id, "x" * 43), id="wrong"),
        pytest.param(lambda agent_id, credential: credentials("other", credential), id="other id"),
        pytest.param(
            lambda agent_id, credential: (
                ("x-remdiag-agent-id", agent_id),
                ("authorization", f"Basic {credential}"),
            ),
            id="not bearer",
        ),
    ],
)
async def test_connect_without_the_right_credential_is_unauthenticated(
    collector: Collector, channel: grpc.aio.Channel, spoil: Callable[[str, str], Metadata]
) -> None:
    response = await enroll(channel)
    metadata = spoil(response.agent_id, response.credential)
    code, details = await outcome(channel, [hello(response.agent_id)], metadata)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "enroll again" in details
    assert not (await agent_row(collector, response.agent_id)).connected


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([], id="no message"),
        pytest.param([heartbeat()], id="heartbeat first"),
        pytest.param([batch(1, pb_result())], id="results first"),
    ],
)
async def test_a_first_message_other_than_hello_is_invalid(
    collector: Collector, channel: grpc.aio.Channel, messages: list[agent_pb2.AgentMessage]
) -> None:
    _, metadata = await enrolled_metadata(channel)
    code, details = await outcome(channel, messages, metadata)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello" in details
    assert (await collector.store.run(counts))["check_results"] == 0


async def test_a_hello_naming_another_agent_is_denied(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    other = await enroll(channel, n=2)
    code, _ = await outcome(channel, [hello(other.agent_id, n=2)], metadata)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert not (await agent_row(collector, agent_id)).connected
    assert not (await agent_row(collector, other.agent_id)).connected


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(pb_result(check_id=""), id="empty check_id"),
        pytest.param(pb_result(check_id="x" * 65), id="check_id too long"),
        pytest.param(pb_result(status=99), id="status out of range"),
        pytest.param(pb_result(status=common_pb2.CHECK_STATUS_UNSPECIFIED), id="status unset"),
    ],
)
async def test_a_batch_with_an_invalid_result_is_refused_whole(
    collector: Collector, channel: grpc.aio.Channel, bad: common_pb2.CheckResult
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    code, details = await outcome(channel, [hello(agent_id), batch(1, pb_result(), bad)], metadata)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "results[1]" in details
    assert (await collector.store.run(counts))["check_results"] == 0
    assert (await agent_row(collector, agent_id)).last_sequence == 0
    await eventually(lambda: disconnected(collector, agent_id), "the refused agent's disconnect")


async def test_a_batch_without_a_sequence_is_invalid(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    code, _ = await outcome(channel, [hello(agent_id), batch(0, pb_result())], metadata)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (await collector.store.run(counts))["check_results"] == 0


async def test_a_valid_batch_is_acked_and_a_resend_acked_again_without_a_duplicate(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
    await call.write(hello(agent_id))
    welcome = await call.read()
    assert welcome.WhichOneof("payload") == "welcome"
    assert welcome.welcome.agent_id == agent_id
    assert welcome.welcome.last_acked_sequence == 0
    assert welcome.welcome.heartbeat_interval_seconds > 0

    await call.write(batch(1, pb_result(), pb_result(check_id="network.dns")))
    assert (await call.read()).ack.acked_through == 1
    await call.write(batch(1, pb_result(), pb_result(check_id="network.dns")))
    assert (await call.read()).ack.acked_through == 1
    await call.write(batch(2, pb_result()))
    assert (await call.read()).ack.acked_through == 2
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK

    assert (await collector.store.run(counts))["check_results"] == 3
    assert (await agent_row(collector, agent_id)).last_sequence == 2
    # A reconnecting agent learns where to resume from.
    again = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
    await again.write(hello(agent_id))
    assert (await again.read()).welcome.last_acked_sequence == 2
    await again.done_writing()
    assert await again.code() == grpc.StatusCode.OK


async def test_hello_marks_connected_and_stream_end_marks_disconnected(
    collector: Collector, channel: grpc.aio.Channel
) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
    await call.write(hello(agent_id))
    await call.read()
    agent = await agent_row(collector, agent_id)
    assert agent.connected and agent.last_seen_at is not None

    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK

    await eventually(lambda: disconnected(collector, agent_id), "the agent's disconnect")


async def test_heartbeat_updates_last_seen(collector: Collector, channel: grpc.aio.Channel) -> None:
    agent_id, metadata = await enrolled_metadata(channel)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=metadata)
    await call.write(hello(agent_id))
    await call.read()

    def backdate(session: Session) -> None:
        session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=LONG_AGO))

    await collector.store.run(backdate)
    assert (await agent_row(collector, agent_id)).last_seen_at == LONG_AGO

    await call.write(heartbeat())

    async def seen_again() -> datetime | None:
        seen = (await agent_row(collector, agent_id)).last_seen_at
        return seen if seen and seen > LONG_AGO else None

    await eventually(seen_again, "the heartbeat to update last_seen_at")
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


@pytest.mark.parametrize("service", ["", "remdiag.v1.AgentService", "remdiag.v1.ConsoleService"])
async def test_health_service_answers_serving(channel: grpc.aio.Channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_of_an_unknown_service_is_not_found(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
