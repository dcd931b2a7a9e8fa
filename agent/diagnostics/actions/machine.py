"""Read-only looks at the machine: inventory, processes, disk use, logs, services, SMART."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

from pydantic import Field

from agent.diagnostics.base import (
    AbsolutePath,
    Action,
    Arguments,
    NoArguments,
    Progress,
    ServiceName,
    facts_or_unknown,
    jsonable,
    unknown,
)
from agent.diagnostics.model import ActionContext
from agent.facts.disk_usage import largest_directories
from agent.facts.models import Unavailable
from agent.facts.software.log_lines import recent_errors
from agent.facts.software.processes import measure_top


class Inventory(Action[NoArguments]):
    name = "inventory"
    summary = "The machine's full inventory: hardware, OS, software, network, security."
    arguments = NoArguments
    timeout_seconds = 90.0
    output_cap_bytes = 2 * 1024 * 1024

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        return {name: jsonable(section) for name, section in ctx.inventory().items()}


class TopProcessesArgs(Arguments):
    by: Literal["cpu", "memory"] = Field("cpu", description="Rank by CPU use or by memory")
    count: int = Field(10, ge=1, le=50, description="How many processes")
    interval_seconds: float = Field(
        1.0, ge=0.2, le=10, description="CPU use is measured over this long"
    )


class TopProcesses(Action[TopProcessesArgs]):
    name = "top_processes"
    summary = "The busiest processes by CPU (measured now) or the largest by memory."
    arguments = TopProcessesArgs
    timeout_seconds = 30.0

    def run(self, args: TopProcessesArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        found = measure_top(args.count, args.interval_seconds if args.by == "cpu" else 0.0)
        if isinstance(found, Unavailable):
            return unknown(found.reason)
        ranked = found.top_by_cpu if args.by == "cpu" else found.top_by_memory
        return {
            "by": args.by,
            "process_count": found.process_count,
            "logical_cores": found.logical_cores,
            "memory_total_bytes": found.memory_total_bytes,
            "cpu_window_seconds": found.cpu_window_seconds,
            "processes": jsonable(ranked),
        }


class LargestDirsArgs(Arguments):
    path: AbsolutePath = Field(description="Absolute path of the directory to measure")
    max_depth: int = Field(2, ge=1, le=4, description="Levels below the path to rank")
    top: int = Field(15, ge=1, le=100, description="How many directories to list")
    max_entries: int = Field(
        200_000, ge=100, le=2_000_000, description="Stop after visiting this many entries"
    )
    time_budget_seconds: float = Field(
        30.0, ge=1, le=100, description="Stop walking after this long"
    )


class LargestDirs(Action[LargestDirsArgs]):
    name = "largest_dirs"
    summary = "The largest directories under a path (bounded depth, entries and time)."
    arguments = LargestDirsArgs
    timeout_seconds = 120.0

    def run(self, args: LargestDirsArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        progress(f"measuring {args.path}")
        budget = min(args.time_budget_seconds, max(0.5, progress.remaining() - 5))
        found = largest_directories(
            args.path,
            args.max_depth,
            args.top,
            args.max_entries,
            deadline=time.monotonic() + budget,
        )
        return facts_or_unknown(found)


class SystemLogErrorsArgs(Arguments):
    since_minutes: int = Field(60, ge=1, le=7 * 24 * 60, description="How far back to look")
    max_lines: int = Field(100, ge=1, le=1000, description="The newest this many lines")


class SystemLogErrors(Action[SystemLogErrorsArgs]):
    name = "system_log_errors"
    summary = "Recent error-level entries of the system log (journald or syslog), bounded."
    arguments = SystemLogErrorsArgs
    timeout_seconds = 40.0

    def run(
        self, args: SystemLogErrorsArgs, ctx: ActionContext, progress: Progress
    ) -> dict[str, Any]:
        return facts_or_unknown(recent_errors(args.since_minutes * 60.0, args.max_lines))


class ServicesStatusArgs(Arguments):
    names: list[ServiceName] = Field(
        default_factory=list, max_length=32, description="Services to show; failed ones if empty"
    )


class ServicesStatus(Action[ServicesStatusArgs]):
    name = "services_status"
    summary = "The state of named services, or every failed one, from the service manager."
    arguments = ServicesStatusArgs
    timeout_seconds = 30.0

    def run(
        self, args: ServicesStatusArgs, ctx: ActionContext, progress: Progress
    ) -> dict[str, Any]:
        found = ctx.source.services()
        if isinstance(found, Unavailable):
            return unknown(found.reason)
        if not args.names:
            return {"manager": found.manager, "failed": jsonable(found.failed)}
        by_name = {s.name.casefold(): s for s in found.services}
        by_name.update({s.display_name.casefold(): s for s in found.services if s.display_name})
        shown = {}
        for name in args.names:
            state = by_name.get(name.removesuffix(".service").casefold())
            shown[name] = jsonable(state) if state else {"state": "not found"}
        return {"manager": found.manager, "services": shown}


class PendingUpdates(Action[NoArguments]):
    name = "pending_updates"
    summary = "Updates the package manager knows are pending (from its local state)."
    arguments = NoArguments
    timeout_seconds = 60.0

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        found = ctx.source.pending_updates()
        if isinstance(found, Unavailable):
            return unknown(found.reason)
        return {
            "manager": found.manager,
            "pending": found.pending,
            "security": found.security,
            "lists_age_seconds": found.lists_age_seconds,
            "updates": jsonable(found.updates),
        }


class SmartDetailsArgs(Arguments):
    device: str | None = Field(
        None,
        max_length=64,
        pattern=r"^/dev/[A-Za-z0-9][A-Za-z0-9/_-]*$",
        description="A drive such as /dev/sda or /dev/nvme0; every drive when unset",
    )


class SmartDetails(Action[SmartDetailsArgs]):
    name = "smart_details"
    summary = "SMART health and attributes of one drive or every drive (smartctl)."
    arguments = SmartDetailsArgs
    timeout_seconds = 90.0

    def run(self, args: SmartDetailsArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        found = ctx.source.smart()
        if isinstance(found, Unavailable):
            return unknown(found.reason)
        if args.device is None:
            return facts_or_unknown(found)
        drives = tuple(d for d in found.drives if d.device == args.device)
        if not drives:
            known = [d.device for d in found.drives]
            return unknown(f"no SMART data for {args.device}", devices=known, errors=found.errors)
        return facts_or_unknown(dataclasses.replace(found, drives=drives))
