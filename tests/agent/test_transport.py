"""The agent keeps running while the collector is unreachable, retries, and then delivers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.app import Agent
from agent.config import AgentSettings
from agent.transport import backoff_delay
from collector.config import CollectorSettings
from collector.server import serve
from collector.store.models import CheckResult
from tests.support import LOOPBACK_CHECKS, eventually, free_port


def test_backoff_is_full_jitter_capped() -> None:
    import random

    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 8.0, rng) for n in range(20)]
    assert all(0.0 <= d <= min(8.0, 2**n) for n, d in enumerate(delays))
    assert max(delays[5:]) > 1.0


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
