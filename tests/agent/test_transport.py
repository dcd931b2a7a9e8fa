"""The agent keeps running while the collector is unreachable, retries, and then delivers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from agent.app import Agent
from agent.config import AgentSettings
from agent.transport import backoff_delay, reconnect_delay
from collector.config import CollectorSettings
from collector.server import serve
from collector.store.models import CheckResult
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from tests.support import LOOPBACK_CHECKS, eventually, free_port


def test_backoff_is_full_jitter_capped() -> None:
    import random

    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 8.0, rng) for n in range(20)]
    assert all(0.0 <= d <= min(8.0, 2**n) for n, d in enumerate(delays))
    assert max(delays[5:]) > 1.0


def test_a_pause_the_collector_asked_for_replaces_the_backoff_within_its_cap() -> None:
    import random

    rng = random.Random(7)
    asked = [reconnect_delay(0, 1.0, 60.0, rng, 12.0) for _ in range(200)]
    assert all(12.0 <= d <= 13.2 for d in asked)
    assert max(asked) - min(asked) > 0.6  # spread, so agents told one time do not come at once
    assert reconnect_delay(3, 1.0, 60.0, rng, 600.0) == 60.0
    assert 0.0 <= reconnect_delay(3, 1.0, 60.0, rng, None) <= 8.0


async def test_unreachable_collector_then_delivery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    agent = Agent(
        AgentSettings(
            collector=f"127.0.0.1:{port}",
            state_dir=tmp_path / "agent",
            reconnect_initial_seconds=0.05,
            reconnect_max_seconds=0.2,
            batch_max_delay_seconds=0.05,
            checks={
                **LOOPBACK_CHECKS,
                "disk.free_space": {
                    "interval_seconds": 1,
                    "thresholds": {"paths": [str(tmp_path)]},
                },
            },
        )
    )
    caplog.set_level(logging.INFO, logger="agent.transport")
    task = asyncio.create_task(agent.run())
    try:
        # Nobody listens: the agent retries and keeps its results.
        await eventually(
            lambda: _ready(caplog.text.count("reconnecting in") >= 3 and len(agent.outbox) > 0),
            "several reconnect attempts with results waiting",
        )
        assert not task.done()
        waiting = len(agent.outbox)

        collector = await serve(
            CollectorSettings(
                listen=f"127.0.0.1:{port}", database_url=f"sqlite:///{tmp_path / 'c.db'}"
            )
        )
        try:
            stored = await eventually(
                lambda: collector.store.run(
                    lambda s: (
                        s.scalar(select(func.count()).select_from(CheckResult))
                        if (s.scalar(select(func.count()).select_from(CheckResult)) or 0) >= waiting
                        else None
                    )
                ),
                "the waiting results to arrive",
            )
            assert stored >= waiting
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await collector.stop()
    finally:
        task.cancel()


async def _ready(value: bool) -> bool:
    return value


def test_a_batch_the_collector_refuses_is_dropped_not_resent(tmp_path: Path) -> None:
    import grpc

    from agent.transport import REJECTED_SEQUENCE_HEADER
    from tests.agent.test_outbox import run

    agent = Agent(AgentSettings(state_dir=tmp_path / "agent", checks=LOOPBACK_CHECKS))
    for n in range(3):
        agent.outbox.add(run(n))
    bad = agent.outbox.next_batch(2)
    good = agent.outbox.next_batch(2)
    assert bad is not None and good is not None
    refused = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.Metadata(),
        grpc.aio.Metadata((REJECTED_SEQUENCE_HEADER, str(bad.sequence))),
        details="results 1 refused: ...",
    )
    agent.transport._on_rpc_error(refused)
    assert agent.outbox.rejected == 2
    assert [b.sequence for b in agent.outbox.resume(acked_through=0)] == [good.sequence]


class RecordingCollector(agent_pb2_grpc.AgentServiceServicer):
    """A collector that welcomes any agent with a fixed policy and records what it is told."""

    def __init__(self, policy: common_pb2.Policy) -> None:
        self.policy = policy
        self.hellos: list[agent_pb2.Hello] = []
        self.heartbeats: list[agent_pb2.Heartbeat] = []

    async def Connect(
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[agent_pb2.CollectorMessage]:
        async for message in request_iterator:
            kind = message.WhichOneof("payload")
            if kind == "hello":
                self.hellos.append(message.hello)
                yield agent_pb2.CollectorMessage(
                    welcome=agent_pb2.Welcome(
                        agent_id=message.hello.agent_id,
                        policy=self.policy,
                        heartbeat_interval_seconds=1,
                    )
                )
            elif kind == "heartbeat":
                self.heartbeats.append(message.heartbeat)


async def test_hello_and_heartbeats_report_the_policy_version_the_agent_runs(
    tmp_path: Path,
) -> None:
    from agent.identity import Identity, save_identity
    from agent.saved_policy import load_policy, save_policy

    pushed = common_pb2.Policy(
        version=7,
        checks=[
            common_pb2.CheckPolicy(check_id="disk.free_space", cron="0 2 * * 0", timezone="UTC")
        ],
    )
    collector = RecordingCollector(pushed)
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    state_dir = tmp_path / "agent"
    address = f"127.0.0.1:{port}"
    save_identity(state_dir, Identity("agent-1", "secret", address))
    save_policy(state_dir, common_pb2.Policy(version=5))  # the policy it ran before a restart
    agent = Agent(AgentSettings(collector=address, state_dir=state_dir, checks=LOOPBACK_CHECKS))
    task = asyncio.create_task(agent.transport.run())
    try:
        await eventually(
            lambda: _ready(any(h.policy_version == 7 for h in collector.heartbeats)),
            "a heartbeat naming the pushed policy's version",
        )
        assert collector.hellos[0].policy_version == 5
        assert agent.policy_version == 7
        assert load_policy(state_dir) == pushed
        disk = next(p for p in agent.plan.checks if p.check.id == "disk.free_space")
        assert disk.cron == "0 2 * * 0"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.stop(None)
