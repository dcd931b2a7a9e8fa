"""Fixtures for diagnostics tests: a real context on this machine, a runner, a run helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.checks.registry import CHECKS
from agent.config import CheckSettings, DiagnosticsSettings
from agent.diagnostics.history import HISTORY_FILE, History
from agent.diagnostics.model import ActionContext, Outcome, Request
from agent.diagnostics.runner import DiagnosticRunner
from agent.facts.live import LiveFacts
from agent.plan import build_plan
from tests.support import LOOPBACK_CHECKS

Run = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def context(tmp_path: Path) -> ActionContext:
    source = LiveFacts(state_dir=tmp_path)
    local = {k: CheckSettings.model_validate(v) for k, v in LOOPBACK_CHECKS.items()}
    plan = build_plan(CHECKS, local)
    return ActionContext(source, lambda: plan, lambda: {"cpu": source.cpu()})


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    found = History(tmp_path / "state" / HISTORY_FILE, max_rows=20)
    yield found
    found.close()


def make_runner(
    context: ActionContext, history: History, settings: DiagnosticsSettings | None = None, **kw: Any
) -> DiagnosticRunner:
    return DiagnosticRunner(settings or DiagnosticsSettings(), context, history, **kw)


@pytest.fixture
def run(context: ActionContext, history: History) -> Iterator[Run]:
    """run(action, args, settings=None, request_id=...) -> Outcome, progress lines kept."""
    runners: list[DiagnosticRunner] = []
    counter = iter(range(1_000_000))

    async def run_one(
        action: str,
        args: dict[str, Any] | None = None,
        settings: DiagnosticsSettings | None = None,
        **request: Any,
    ) -> Outcome:
        runner = make_runner(context, history, settings)
        runners.append(runner)
        lines: list[str] = []

        async def progress(line: str) -> None:
            lines.append(line)

        fields: dict[str, Any] = {
            "request_id": f"r{next(counter)}",
            "requested_by": "tech@example",
            "expires_at": None,
            "ticket_id": 0,
        } | request
        return await runner.handle(Request(action=action, args=args or {}, **fields), progress)

    yield run_one
    for runner in runners:
        runner.close()
