"""A live policy push: a running agent gets a new interval and thresholds for its disk check on
its stream, without a restart, and the results it then sends show both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.app import Agent
from agent.config import AgentSettings
from collector import console_tokens
from collector.client import ConsoleClient
from collector.config import CollectorSettings
from collector.server import Collector, serve
from collector.store.models import Agent as AgentRow
from collector.store.models import CheckResult
from remdiag.vocabulary import CheckStatus
from tests.e2e.test_end_to_end import DISK, MUST_FAIL, MUST_PASS, running_agent
from tests.support import LOOPBACK_CHECKS, eventually


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'collector.db'}"
        )
    )
    yield running
    await running.stop()


def admin(collector: Collector) -> ConsoleClient:
    made = collector.store.call(
        lambda s: console_tokens.create(s, datetime.now(UTC), "root", console_tokens.Role.ADMIN)
    )
    return ConsoleClient(f"127.0.0.1:{collector.port}", made.secret)


async def test_a_pushed_policy_changes_a_running_agents_interval_and_thresholds(
    collector: Collector, tmp_path: Path
) -> None:
    # Locally: the disk check passes, once an hour (it runs once at start).
    settings = AgentSettings(
        collector=f"127.0.0.1:{collector.port}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks={
            **LOOPBACK_CHECKS,
            DISK: {"interval_seconds": 3600, "thresholds": {"paths": [str(tmp_path)], **MUST_PASS}},
        },
    )
    store = collector.store

    def disk_results() -> list[CheckResult]:
        return store.call(
            lambda s: list(
                s.scalars(
                    select(CheckResult)
                    .where(CheckResult.check_id == DISK)
                    .order_by(CheckResult.observed_at)
                )
            )
        )

    def connected_agent() -> str | None:
        rows = store.call(lambda s: list(s.scalars(select(AgentRow).where(AgentRow.connected))))
        return rows[0].id if rows else None

    with admin(collector) as client:
        async with running_agent(Agent(settings)):
            agent_id = await eventually(lambda: asyncio.to_thread(connected_agent), "a connection")
            first = await eventually(lambda: asyncio.to_thread(disk_results), "a disk result")
            assert first[0].status == CheckStatus.OK

            policy = {
                "name": "strict disks",
                "target": {"machines": [agent_id]},
                "checks": {DISK: {"interval_seconds": 1, "thresholds": MUST_FAIL}},
            }
            reply = await asyncio.to_thread(lambda: client.apply_policies([policy]))
            assert reply.machines_affected == 1

            def failing_after_push() -> list[CheckResult]:
                found = [r for r in disk_results() if r.status == CheckStatus.CRITICAL]
                # Two or more: only the new 1 s interval runs it again within the hour.
                return found if len(found) >= 2 else []

            failed = await eventually(
                lambda: asyncio.to_thread(failing_after_push), "failing disk results"
            )
            for result in failed:
                assert result.thresholds["max_used_percent_critical"] == 0
                assert result.thresholds["max_used_percent_warning"] == 0
                assert result.thresholds["paths"] == [str(tmp_path)]  # the agent's own, kept

            effective = await asyncio.to_thread(lambda: client.effective_policy(agent_id))
            assert {v.source for v in effective.values} == {"policy strict disks (machine)"}

            # Deleting it gives the agent back its own settings: passing again.
            await asyncio.to_thread(lambda: client.delete_policy("strict disks"))
            seen = len(disk_results())

            def passing_again() -> bool:
                later = disk_results()[seen:]
                return any(r.status == CheckStatus.OK for r in later)

            await eventually(lambda: asyncio.to_thread(passing_again), "a passing result")
