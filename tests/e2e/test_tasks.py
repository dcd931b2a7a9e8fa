"""Maintenance tasks end to end: a machine offline when its run starts runs the task's steps when
its real agent connects within the window, and the run is settled done; a step the machine
refuses fails the run and opens a ticket. The collector's own job starts and settles the runs;
the test only puts the occurrence and the starts in the recent past."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.app import Agent
from collector import tasks
from collector.actions import DiagnosticsPolicy
from collector.config import CollectorSettings
from collector.server import Collector, serve
from collector.store.models import Diagnostic, MaintenanceTask, TaskRun
from remdiag.v1 import console_pb2
from remdiag.vocabulary import DiagnosticState
from tests.e2e.test_diagnostics import agent_settings, connected_agent_id, console
from tests.e2e.test_end_to_end import running_agent
from tests.support import eventually


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    # The collector allows this remediation; the agent has not opted in, so it refuses it.
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            diagnostics=DiagnosticsPolicy(
                remediation_enabled=True, remediation_actions=["flush_dns_cache"]
            ),
        )
    )
    yield running
    await running.stop()


def due_now(collector: Collector, agent_id: str, name: str, steps: list[str]) -> int:
    """A task for the machine whose occurrence was a minute ago, its run due now."""
    now = datetime.now(UTC)
    made = tasks.task(
        name=name,
        steps=[(action, {}) for action in steps],
        cron="0 3 * * *",
        window_minutes=30,
        target=tasks.target(agent_ids=[agent_id]),
    )

    def work(s: Session) -> int:
        row = tasks.create(s, made, "admin", now)
        row.next_run_at = now - timedelta(minutes=1)
        tasks.schedule_due(s, now)
        for run in s.scalars(select(TaskRun).where(TaskRun.task_id == row.id)):
            run.start_at = now - timedelta(seconds=1)
        return row.id

    return collector.store.call(work)


async def test_an_offline_machine_runs_the_task_when_it_returns(
    collector: Collector, tmp_path: Path
) -> None:
    settings = agent_settings(collector, tmp_path)
    with console(collector) as client:
        async with running_agent(Agent(settings)):
            agent_id = await connected_agent_id(client)

        async def offline() -> bool:
            return not any(a.connected for a in await asyncio.to_thread(client.list_agents))

        await eventually(offline, "the agent to disconnect")
        good = due_now(collector, agent_id, "routes", ["interfaces_routes"])
        bad = due_now(collector, agent_id, "dns flush", ["inventory", "flush_dns_cache"])

        def queued() -> list[Diagnostic]:
            return collector.store.call(
                lambda s: list(s.scalars(select(Diagnostic).where(Diagnostic.task_run_id > 0)))
            )

        async def started() -> list[Diagnostic] | None:
            found = await asyncio.to_thread(queued)
            return found if len(found) == 3 else None

        # The job starts the runs while the machine is away: the steps wait in the queue.
        steps = await eventually(started, "the job to start the runs")
        assert {DiagnosticState(d.state) for d in steps} == {DiagnosticState.QUEUED}
        assert {d.requested_by for d in steps} == {"task:routes", "task:dns flush"}

        async with running_agent(Agent(settings)):

            async def settled() -> dict[int, console_pb2.TaskHistory] | None:
                found = {
                    task_id: await asyncio.to_thread(client.task_history, task_id)
                    for task_id in (good, bad)
                }
                outcomes = [r.outcome for h in found.values() for r in h.results]
                return found if outcomes and "pending" not in outcomes else None

            histories = await eventually(settled, "the runs to settle")

        (ran,) = histories[good].results
        assert ran.outcome == "done" and ran.agent_id == agent_id and ran.ticket_id == 0
        assert [DiagnosticState(d.state) for d in ran.steps] == [DiagnosticState.DONE]
        assert ran.steps[0].output  # the machine's answer is kept with the run

        (failed,) = histories[bad].results
        assert failed.outcome == "failed" and failed.ticket_id
        states = [DiagnosticState(d.state) for d in failed.steps]
        assert states == [DiagnosticState.DONE, DiagnosticState.REFUSED]
        ticket = await asyncio.to_thread(client.get_ticket, failed.ticket_id)
        assert ticket.ticket.check_id == "task:dns flush"
        opened = ticket.events[0].message
        assert "step 2 (flush_dns_cache) was refused on the machine" in opened
        assert {d.action for d in ticket.diagnostics} == {"inventory", "flush_dns_cache"}

    rows = collector.store.call(lambda s: list(s.scalars(select(MaintenanceTask))))
    assert all(r.last_run_at is not None for r in rows)
