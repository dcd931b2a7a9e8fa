"""run_check and run_all_checks: the agent's own checks, now, with the plan's thresholds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from agent.checks.registry import CHECKS
from agent.diagnostics.base import Action, Arguments, Progress
from agent.diagnostics.model import ActionContext
from agent.plan import PlannedCheck
from agent.runner import CheckRun, run_check


def check_run_json(run: CheckRun) -> dict[str, Any]:
    return {
        "check_id": run.check_id,
        "category": run.category.label,
        "status": run.status.label,
        "summary": run.summary,
        "values": [{"name": v.name, "value": v.value, "unit": v.unit} for v in run.values],
        "thresholds": run.thresholds,
        "remediation": run.remediation,
        "observed_at": run.observed_at.isoformat(),
    }


def planned(check_id: str, ctx: ActionContext) -> tuple[PlannedCheck, bool]:
    """The check as the plan has it, or with its defaults when the plan leaves it out
    (disabled here or by policy); the flag says which."""
    for entry in ctx.plan().checks:
        if entry.check.id == check_id:
            return entry, True
    check = CHECKS[check_id]
    return PlannedCheck(check, check.thresholds(), check.default_interval.total_seconds()), False


class RunCheckArgs(Arguments):
    check_id: str = Field(
        min_length=1, max_length=64, description="A check id, e.g. disk.free_space"
    )

    @field_validator("check_id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CHECKS:
            raise ValueError(f"unknown check {value!r}")
        return value


class RunCheck(Action[RunCheckArgs]):
    name = "run_check"
    summary = "Run one check now, with the thresholds in force on this machine."
    arguments = RunCheckArgs
    timeout_seconds = 60.0

    def run(self, args: RunCheckArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        entry, in_plan = planned(args.check_id, ctx)
        result = check_run_json(run_check(entry, ctx.source))
        result["in_plan"] = in_plan
        return result


class RunAllChecksArgs(Arguments):
    category: Literal["hardware", "software", "network", "security"] | None = Field(
        None, description="Only checks of this category; all when unset"
    )


class RunAllChecks(Action[RunAllChecksArgs]):
    name = "run_all_checks"
    summary = "Run every planned check now (optionally one category) and report each result."
    arguments = RunAllChecksArgs
    timeout_seconds = 180.0

    def run(self, args: RunAllChecksArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        chosen = [
            p
            for p in ctx.plan().checks
            if args.category is None or p.check.category.label == args.category
        ]
        results = []
        for index, entry in enumerate(chosen, start=1):
            if progress.stopped:
                break
            progress(f"{index}/{len(chosen)} {entry.check.id}")
            results.append(check_run_json(run_check(entry, ctx.source)))
        counts: dict[str, int] = {}
        for result in results:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        return {"counts": counts, "results": results}
