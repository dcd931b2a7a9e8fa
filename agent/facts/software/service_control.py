"""The two OS actions L1 remediation may take: restart a service, flush the DNS cache.

Fixed argument lists through run_command, never a shell; the callers (agent/diagnostics)
decide whether the action is allowed at all. Each returns what was done, or Unavailable
saying why it could not be.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass

from agent.facts.command import run_command
from agent.facts.models import Unavailable

SYSTEMD_RUNTIME = "/run/systemd/system"
RESOLVED_RUNTIME = "/run/systemd/resolve"
NSCD_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$")


@dataclass(frozen=True)
class ServiceRestart:
    name: str
    manager: str
    state_after: str
    """The manager's word on the service after the restart, e.g. "active"."""


@dataclass(frozen=True)
class DnsFlush:
    method: str
    """What flushed the cache: "resolvectl flush-caches", "nscd -i hosts", ..."""


def systemd_problem(systemd_runtime: str = SYSTEMD_RUNTIME) -> str | None:
    """Why systemd cannot be asked here, or None when it runs (sd_booted(3))."""
    if sys.platform.startswith("linux") and os.path.isdir(systemd_runtime):
        return None
    if not sys.platform.startswith("linux"):
        return f"restarting services is not supported on {sys.platform} yet"
    return (
        f"systemd is not running: {systemd_runtime} does not exist "
        "(this machine was not booted with systemd)"
    )


def restart_service(
    name: str, systemd_runtime: str = SYSTEMD_RUNTIME
) -> ServiceRestart | Unavailable:
    """`systemctl restart NAME.service`, then its state; the name must be a plain unit name."""
    if not SERVICE_NAME.match(name):
        return Unavailable(f"{name!r} is not a service name")
    problem = systemd_problem(systemd_runtime)
    if problem:
        return Unavailable(problem)
    unit = name if name.endswith(".service") else f"{name}.service"
    done = run_command(["systemctl", "restart", "--no-ask-password", unit], timeout_s=60)
    if isinstance(done, Unavailable):
        return done
    state = run_command(["systemctl", "is-active", unit], timeout_s=10, ok_codes=range(256))
    after = "unknown" if isinstance(state, Unavailable) else state.stdout.strip() or "unknown"
    return ServiceRestart(name, "systemd", after)


def flush_dns_cache(
    resolved_runtime: str = RESOLVED_RUNTIME, nscd_sockets: tuple[str, ...] = NSCD_SOCKETS
) -> DnsFlush | Unavailable:
    """Flush whichever DNS cache this machine runs."""
    if sys.platform == "win32":
        argv = ["ipconfig", "/flushdns"]
    elif sys.platform == "darwin":
        argv = ["dscacheutil", "-flushcache"]
    elif os.path.isdir(resolved_runtime) and shutil.which("resolvectl"):
        argv = ["resolvectl", "flush-caches"]
    elif any(os.path.exists(s) for s in nscd_sockets) and shutil.which("nscd"):
        argv = ["nscd", "-i", "hosts"]
    else:
        return Unavailable(
            "no DNS cache to flush: systemd-resolved is not running "
            f"({resolved_runtime} does not exist) and nscd is not running"
        )
    done = run_command(argv, timeout_s=20)
    if isinstance(done, Unavailable):
        return done
    return DnsFlush(" ".join(argv))
