"""Runs one diagnostic request: refuse what is not allowed, run the rest bounded, record all.

The agent trusts nothing in a request: the action must be in the registry, the arguments are
validated here again, remediation must be enabled and listed in the local config, and an
expired request is refused. An action runs in a worker thread of the runner's own (so a slow
one never holds up the checks) under its timeout; whatever it raises becomes FAILED, its
output is capped, and every run, refused ones too, goes into the History.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from agent.config import DiagnosticsSettings
from agent.diagnostics.base import Action, ActionFailed, Progress, jsonable
from agent.diagnostics.history import History
from agent.diagnostics.model import ActionContext, Outcome, ProgressSink, Request
from remdiag.vocabulary import DiagnosticState

log = logging.getLogger(__name__)

WORKERS = 2
MAX_ERROR = 300
_CAP_ROUNDS = 24


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _shrink(value: Any) -> Any:
    """`value` with every list halved and every long string cut: one step toward a cap."""
    if isinstance(value, dict):
        return {k: _shrink(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrink(v) for v in value[: len(value) // 2]]
    if isinstance(value, str) and len(value) > 64:
        return value[: len(value) // 2] + "…"
    return value


def cap_output(output: dict[str, Any], cap: int) -> tuple[dict[str, Any], int, bool]:
    """(output within `cap` bytes of JSON, its original size, whether it was cut).

    Lists are cut from the end and long strings shortened, step by step, so what remains is
    still valid JSON shaped like the whole; a note says how large the output was.
    """
    size = _size(output)
    if size <= cap:
        return output, size, False
    note = {"_truncated": f"output of {size} bytes cut to fit the cap of {cap} bytes"}
    shrunk: Any = output
    for _ in range(_CAP_ROUNDS):
        shrunk = _shrink(shrunk)
        if _size(shrunk) + _size(note) <= cap:
            return {**note, **shrunk}, size, True
    return note, size, True


class DiagnosticRunner:
    """Handles requests for one agent; keep one per agent (it owns its worker threads)."""

    def __init__(
        self,
        settings: DiagnosticsSettings,
        context: ActionContext,
        history: History,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        actions: Mapping[str, Action[Any]] | None = None,
    ) -> None:
        """`actions` is the registry (by default agent/diagnostics/registry.py, loaded at the
        first request: most agents never get one, and its actions' code costs about 0.8 MB);
        tests hand in their own (a slow one, a failing one)."""
        self.settings = settings
        self._actions = actions
        self.context = dataclasses.replace(context, settings=settings)
        self.history = history
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="diagnostics")
        self._running: dict[str, asyncio.Future[Outcome]] = {}

    @property
    def actions(self) -> Mapping[str, Action[Any]]:
        if self._actions is None:
            from agent.diagnostics.registry import ACTIONS

            self._actions = ACTIONS
        return self._actions

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: Request, progress: ProgressSink) -> Outcome:
        """Run `request` once, whatever happens; a repeated request id gets the first answer."""
        running = self._running.get(request.request_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._running[request.request_id] = future
        try:
            outcome = await self._recorded_or_run(request, progress)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            future.set_result(outcome)
            return outcome
        finally:
            self._running.pop(request.request_id, None)

    async def _recorded_or_run(self, request: Request, progress: ProgressSink) -> Outcome:
        recorded = await asyncio.to_thread(self.history.recorded, request.request_id)
        if recorded is not None:
            output = recorded.output
            if output is None:
                output = {"_note": f"already run at {recorded.finished_at}; output not kept"}
            return Outcome(recorded.state, output, recorded.error, recorded.truncated)
        return await self._handle(request, progress)

    def refusal(self, request: Request) -> tuple[Action[Any] | None, dict[str, Any], str]:
        """(action, validated args, "") when this agent would run `request`, else the reason."""
        from agent.diagnostics.registry import InvalidDiagnostic, UnknownAction, validated_args

        try:
            action = self.actions.get(request.action)
            if action is None:
                raise UnknownAction(
                    f"unknown action {request.action[:100]!r}: this agent does not run it"
                )
            args = validated_args(action, request.args)
        except InvalidDiagnostic as exc:
            return None, {}, str(exc)
        if request.expires_at is not None and request.expires_at <= self._clock():
            return action, args, f"the request expired at {request.expires_at.isoformat()}"
        if action.remediation:
            if not self.settings.remediation_enabled:
                return action, args, (
                    "remediation is not enabled on this machine "
                    "(its config's [diagnostics] remediation_enabled is false)"
                )  # fmt: skip
            if action.name not in self.settings.remediation_actions:
                return action, args, (
                    f"remediation {action.name} is not allowed on this machine "
                    "(not in its config's [diagnostics] remediation_actions)"
                )  # fmt: skip
        return action, args, ""

    async def _handle(self, request: Request, progress: ProgressSink) -> Outcome:
        action, args, refused = self.refusal(request)
        started = await asyncio.to_thread(
            self.history.start,
            request.request_id,
            request.action,
            args or jsonable(request.args),
            request.requested_by,
            request.ticket_id,
            bool(action and action.remediation),
        )
        if not started:  # recorded by another process, or a run that never finished
            recorded = await asyncio.to_thread(self.history.recorded, request.request_id)
            if recorded is not None:
                return Outcome(recorded.state, recorded.output or {}, recorded.error)
            return Outcome(
                DiagnosticState.REFUSED, {}, "this request was already started and did not finish"
            )
        if refused or action is None:
            log.warning("diagnostic %s refused: %s", request.request_id, refused)
            outcome = Outcome(DiagnosticState.REFUSED, {}, one_line(refused))
            await self._record(request, outcome, 0)
            return outcome
        log.info(
            "diagnostic %s: %s for %s (ticket %s)",
            request.request_id,
            action.name,
            request.requested_by,
            request.ticket_id or "-",
        )
        outcome, size = await self._run(action, args, progress)
        await self._record(request, outcome, size)
        return outcome

    async def _record(self, request: Request, outcome: Outcome, size: int) -> None:
        await asyncio.to_thread(
            self.history.finish,
            request.request_id,
            outcome.state,
            outcome.error,
            outcome.output,
            size,
            outcome.truncated,
        )

    async def _run(
        self, action: Action[Any], args: dict[str, Any], progress: ProgressSink
    ) -> tuple[Outcome, int]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(line: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under a late action
                loop.call_soon_threadsafe(lines.put_nowait, line)

        tracker = Progress(emit, action.timeout_seconds)
        pump = asyncio.create_task(self._pump(lines, progress))
        model = action.arguments.model_validate(args)
        work = loop.run_in_executor(self._pool, action.run, model, self.context, tracker)
        timed_out = Outcome(
            DiagnosticState.FAILED, {}, f"timed out after {action.timeout_seconds:g} s"
        )
        try:
            output = await asyncio.wait_for(work, action.timeout_seconds)
        except TimeoutError:
            tracker.stop()  # a cooperative action stops; its thread is left to end
            return timed_out, 0
        except ActionFailed as exc:
            return Outcome(DiagnosticState.FAILED, {}, one_line(str(exc))), 0
        except Exception as exc:  # an action must never take the agent down
            log.exception("diagnostic action %s failed", action.name)
            return Outcome(DiagnosticState.FAILED, {}, one_line(f"{type(exc).__name__}: {exc}")), 0
        finally:
            loop.call_soon(lines.put_nowait, None)
            with contextlib.suppress(Exception):
                await pump
        if tracker.told_to_stop:
            # Its own deadline stopped it just before ours fired: its output is cut short.
            return timed_out, 0
        try:
            safe = jsonable(output if isinstance(output, dict) else {"value": output})
            capped, size, truncated = cap_output(safe, action.output_cap_bytes)
        except (TypeError, ValueError) as exc:
            return Outcome(DiagnosticState.FAILED, {}, one_line(f"unusable output: {exc}")), 0
        return Outcome(DiagnosticState.DONE, capped, "", truncated), size

    @staticmethod
    async def _pump(lines: asyncio.Queue[str | None], progress: ProgressSink) -> None:
        while (line := await lines.get()) is not None:
            try:
                await progress(line)
            except Exception:  # the listener went away: the run goes on
                log.debug("progress line dropped", exc_info=True)
