"""The runner: refusals, timeout, failures, output cap, dedupe, and the history it writes.

Slow, failing and chatty actions are test actions handed to the runner as its registry.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from agent.diagnostics.base import Action, Arguments, NoArguments, Progress
from agent.diagnostics.history import History
from agent.diagnostics.model import ActionContext, Request
from agent.diagnostics.registry import ACTIONS
from agent.diagnostics.runner import cap_output
from remdiag.vocabulary import DiagnosticState
from tests.agent.diagnostics.conftest import Run, make_runner


class Slow(Action[NoArguments]):
    name = "slow"
    summary = "Waits until told to stop."
    arguments = NoArguments
    timeout_seconds = 0.3

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        progress("waiting")
        while not progress.stopped:
            time.sleep(0.01)
        self.stopped.set()
        return {}


class Boom(Action[NoArguments]):
    name = "boom"
    summary = "Raises."
    arguments = NoArguments

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        raise RuntimeError("disk on fire\nsecond line")


class BigArgs(Arguments):
    rows: int = Field(10, ge=1, le=100_000)


class Big(Action[BigArgs]):
    name = "big"
    summary = "Counts its runs and answers with many rows."
    arguments = BigArgs
    output_cap_bytes = 2000

    def __init__(self) -> None:
        self.runs = 0

    def run(self, args: BigArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        self.runs += 1
        progress("one")
        progress("two")
        return {"rows": [{"n": i, "text": "x" * 100} for i in range(args.rows)]}


def request(action: str, request_id: str = "r1", **kw: Any) -> Request:
    fields: dict[str, Any] = {
        "args": {},
        "requested_by": "alice",
        "expires_at": None,
        "ticket_id": 7,
    } | kw
    return Request(request_id=request_id, action=action, **fields)


async def test_unknown_action_is_refused_and_recorded(run: Run, history: History) -> None:
    outcome = await run("format_disk", {"drive": "C:"}, request_id="x1")
    assert outcome.state is DiagnosticState.REFUSED
    assert "unknown action 'format_disk'" in outcome.error
    (row,) = history.rows()
    assert row.request_id == "x1" and row.state is DiagnosticState.REFUSED
    assert row.action == "format_disk" and row.requested_by == "tech@example"


async def test_invalid_arguments_refused_whatever_the_collector_sent(run: Run) -> None:
    outcome = await run("largest_dirs", {"path": "/tmp/../etc/shadow"})
    assert outcome.state is DiagnosticState.REFUSED
    assert "'..'" in outcome.error
    outcome = await run("ping", {"host": "127.0.0.1", "count": 10_000})
    assert outcome.state is DiagnosticState.REFUSED and "count" in outcome.error


async def test_expired_request_is_refused(run: Run) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    outcome = await run("inventory", expires_at=past)
    assert outcome.state is DiagnosticState.REFUSED and "expired" in outcome.error
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert (await run("inventory", expires_at=future)).state is DiagnosticState.DONE


async def test_an_action_its_own_deadline_stopped_first_has_timed_out(
    context: ActionContext, history: History
) -> None:
    """On a loaded machine the event loop runs late: the action sees its deadline (`stopped`)
    and returns before the runner's timeout fires. Its output is cut short all the same."""
    slow = Slow()
    runner = make_runner(context, history, actions={"slow": slow})
    started = asyncio.Event()

    async def progress(line: str) -> None:
        started.set()

    handled = asyncio.create_task(runner.handle(request("slow"), progress))
    await started.wait()
    # The loop stalls past the deadline; the action thread sees it and returns first.
    time.sleep(3 * Slow.timeout_seconds)  # noqa: ASYNC251
    assert slow.stopped.wait(5)
    outcome = await handled
    runner.close()
    assert outcome.state is DiagnosticState.FAILED
    assert outcome.error == "timed out after 0.3 s"


async def test_timeout_fails_and_stops_the_action(context: ActionContext, history: History) -> None:
    slow = Slow()
    runner = make_runner(context, history, actions={"slow": slow})
    lines: list[str] = []

    async def progress(line: str) -> None:
        lines.append(line)

    outcome = await runner.handle(request("slow"), progress)
    runner.close()
    assert outcome.state is DiagnosticState.FAILED
    assert outcome.error == "timed out after 0.3 s"
    assert lines == ["waiting"]
    assert slow.stopped.wait(5)
    assert history.rows()[0].state is DiagnosticState.FAILED


async def test_an_exception_is_a_one_line_failure(context: ActionContext, history: History) -> None:
    runner = make_runner(context, history, actions={"boom": Boom()})

    async def progress(line: str) -> None:
        pass

    outcome = await runner.handle(request("boom"), progress)
    runner.close()
    assert outcome.state is DiagnosticState.FAILED
    assert outcome.error == "RuntimeError: disk on fire second line"


async def test_output_cap_keeps_valid_json(context: ActionContext, history: History) -> None:
    big = Big()
    runner = make_runner(context, history, actions={"big": big})

    async def progress(line: str) -> None:
        pass

    small = await runner.handle(request("big", "a", args={"rows": 3}), progress)
    assert small.state is DiagnosticState.DONE and not small.truncated
    assert len(small.output["rows"]) == 3
    large = await runner.handle(request("big", "b", args={"rows": 500}), progress)
    runner.close()
    assert large.state is DiagnosticState.DONE and large.truncated
    text = json.dumps(large.output)
    assert len(text.encode()) <= Big.output_cap_bytes
    assert 0 < len(json.loads(text)["rows"]) < 500
    assert "cut to fit" in large.output["_truncated"]
    assert history.rows()[0].truncated and history.rows()[0].output_bytes > 2000


def test_cap_output_of_an_unshrinkable_output() -> None:
    capped, size, truncated = cap_output({"k" * 5000: 1}, 200)
    assert truncated and size > 5000 and list(capped) == ["_truncated"]


async def test_a_repeated_request_runs_once(context: ActionContext, history: History) -> None:
    big = Big()
    runner = make_runner(context, history, actions={"big": big})
    lines: list[str] = []

    async def progress(line: str) -> None:
        lines.append(line)

    first, second = await asyncio.gather(
        runner.handle(request("big", "same"), progress),
        runner.handle(request("big", "same"), progress),
    )
    again = await runner.handle(request("big", "same"), progress)
    runner.close()
    assert big.runs == 1
    assert first == second == again
    assert lines == ["one", "two"]
    # A new runner (the agent restarted) still knows it from the history.
    restarted = make_runner(context, history, actions={"big": big})
    assert await restarted.handle(request("big", "same"), progress) == first
    restarted.close()
    assert big.runs == 1
    assert len(history.rows()) == 1


async def test_history_rows_say_who_and_what(run: Run, history: History) -> None:
    await run("inventory", request_id="h1", ticket_id=42, requested_by="bob")
    (row,) = history.rows()
    assert (row.request_id, row.action, row.requested_by, row.ticket_id) == (
        "h1",
        "inventory",
        "bob",
        42,
    )
    assert row.state is DiagnosticState.DONE and row.output_bytes > 0
    assert row.finished_at is not None and row.finished_at >= row.started_at
    assert not row.remediation


async def test_history_is_bounded(run: Run, history: History) -> None:
    for index in range(25):
        await run("nope", request_id=f"n{index}")
    rows = history.rows(100)
    assert len(rows) == history.max_rows == 20
    assert rows[0].request_id == "n24"


def test_registry_is_the_default() -> None:
    assert "slow" not in ACTIONS
