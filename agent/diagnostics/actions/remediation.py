"""Safe L1 remediation: clear configured temp directories, restart an allowed service, flush DNS.

These change the machine, so each runs only when the local config enables remediation and
lists the action (the runner checks that), and only on what the config names: temp_dirs,
services_allowed. Anything they cannot do is a FAILED run with the reason.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import Field

from agent.diagnostics.base import (
    AbsolutePath,
    Action,
    ActionFailed,
    Arguments,
    NoArguments,
    Progress,
    ServiceName,
    jsonable,
)
from agent.diagnostics.model import ActionContext
from agent.facts.cleanup import remove_old_files
from agent.facts.models import Unavailable
from agent.facts.software.service_control import flush_dns_cache, restart_service

HOUR_S = 3600.0


class ClearTempArgs(Arguments):
    older_than_hours: int = Field(
        24, ge=1, le=24 * 365, description="Remove files last modified longer ago than this"
    )
    directory: AbsolutePath | None = Field(
        None, description="One of the configured temp_dirs; all of them when unset"
    )
    dry_run: bool = Field(False, description="Report what would go, remove nothing")
    max_entries: int = Field(
        500_000, ge=100, le=5_000_000, description="Stop after visiting this many entries"
    )


class ClearTemp(Action[ClearTempArgs]):
    name = "clear_temp"
    summary = "Remove old files from the temp directories the agent's config lists."
    arguments = ClearTempArgs
    timeout_seconds = 300.0
    remediation = True

    def run(self, args: ClearTempArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        configured = [os.path.normpath(str(p)) for p in ctx.settings.temp_dirs]
        if not configured:
            raise ActionFailed("no temp_dirs are configured in the agent's [diagnostics] settings")
        if args.directory is not None and args.directory not in configured:
            raise ActionFailed(f"{args.directory} is not one of the configured temp_dirs")
        chosen = [args.directory] if args.directory is not None else configured
        results = []
        for directory in chosen:
            progress(f"clearing {directory}")
            found = remove_old_files(
                directory,
                args.older_than_hours * HOUR_S,
                args.max_entries,
                deadline=time.monotonic() + max(1.0, progress.remaining() - 5),
                dry_run=args.dry_run,
            )
            if isinstance(found, Unavailable):
                results.append({"directory": directory, "error": found.reason})
            else:
                results.append(jsonable(found))
        if all("error" in r for r in results):
            raise ActionFailed("; ".join(r["error"] for r in results))
        return {
            "dry_run": args.dry_run,
            "older_than_hours": args.older_than_hours,
            "bytes_freed": sum(r.get("bytes_freed", 0) for r in results),
            "files_removed": sum(r.get("files_removed", 0) for r in results),
            "directories": results,
        }


class RestartServiceArgs(Arguments):
    name: ServiceName = Field(description="A service in the agent's services_allowed list")


class RestartService(Action[RestartServiceArgs]):
    name = "restart_service"
    summary = "Restart a service the agent's config allows (services_allowed)."
    arguments = RestartServiceArgs
    timeout_seconds = 90.0
    remediation = True

    def run(
        self, args: RestartServiceArgs, ctx: ActionContext, progress: Progress
    ) -> dict[str, Any]:
        allowed = {n.removesuffix(".service") for n in ctx.settings.services_allowed}
        if args.name.removesuffix(".service") not in allowed:
            raise ActionFailed(f"{args.name} is not in the agent's services_allowed list")
        progress(f"restarting {args.name}")
        found = restart_service(args.name)
        if isinstance(found, Unavailable):
            raise ActionFailed(found.reason)
        return {"name": found.name, "manager": found.manager, "state_after": found.state_after}


class FlushDnsCache(Action[NoArguments]):
    name = "flush_dns_cache"
    summary = "Flush the machine's DNS cache (systemd-resolved, nscd, Windows, macOS)."
    arguments = NoArguments
    timeout_seconds = 30.0
    remediation = True

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        found = flush_dns_cache()
        if isinstance(found, Unavailable):
            raise ActionFailed(found.reason)
        return {"flushed": True, "method": found.method}
