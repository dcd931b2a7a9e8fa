"""The checks this agent knows, by stable id: the one list to add a new check to."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agent.checks.base import Check
from agent.checks.cpu import CpuSustainedLoad
from agent.checks.disk import DiskFreeSpace
from agent.checks.dns import DnsResolution
from agent.checks.gateway import GatewayReachable
from agent.checks.memory import MemoryPressure
from agent.checks.uptime import RebootOverdue

CHECKS: Mapping[str, Check[Any, Any]] = MappingProxyType(
    {
        check.id: check
        for check in (
            DiskFreeSpace(),
            MemoryPressure(),
            CpuSustainedLoad(),
            DnsResolution(),
            GatewayReachable(),
            RebootOverdue(),
        )
    }
)


def get_check(check_id: str) -> Check[Any, Any]:
    """The check registered as `check_id`; KeyError naming the known ids otherwise."""
    try:
        return CHECKS[check_id]
    except KeyError:
        known = ", ".join(sorted(CHECKS))
        raise KeyError(f"unknown check {check_id!r}; known checks: {known}") from None
