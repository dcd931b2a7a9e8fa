"""The checks this agent knows, by stable id: the one list to add a new check to."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from agent.checks.antivirus import AntivirusActive
from agent.checks.base import Check
from agent.checks.battery import BatteryWear
from agent.checks.certificate_expiry import CertificateExpiry
from agent.checks.cpu import CpuSustainedLoad
from agent.checks.disk import DiskFreeSpace
from agent.checks.disk_encryption import DiskEncryption
from agent.checks.disk_fill import DiskFillSoon
from agent.checks.dns import DnsResolution
from agent.checks.firewall import FirewallEnabled
from agent.checks.gateway import GatewayReachable
from agent.checks.inodes import DiskInodes
from agent.checks.interface import InterfaceHealth
from agent.checks.log_errors import LogErrorBurst
from agent.checks.memory import MemoryPressure
from agent.checks.process_runaway import ProcessRunaway
from agent.checks.reboot_required import RebootRequired
from agent.checks.security_updates import SecurityUpdatesPending
from agent.checks.service_down import ServiceDown
from agent.checks.smart import DiskSmart
from agent.checks.swap import MemorySwap
from agent.checks.target_reachability import TargetReachability
from agent.checks.temperature import SensorsTemperature
from agent.checks.time_drift import TimeDrift
from agent.checks.unexpected_listener import UnexpectedListener
from agent.checks.uptime import RebootOverdue
from agent.checks.wifi_signal import WifiSignal

CHECKS: Mapping[str, Check[Any, Any]] = MappingProxyType(
    {
        check.id: check
        for check in (
            # hardware
            DiskFreeSpace(),
            DiskFillSoon(),
            DiskInodes(),
            DiskSmart(),
            MemoryPressure(),
            MemorySwap(),
            CpuSustainedLoad(),
            BatteryWear(),
            SensorsTemperature(),
            # software
            RebootOverdue(),
            RebootRequired(),
            ProcessRunaway(),
            ServiceDown(),
            TimeDrift(),
            LogErrorBurst(),
            # network
            DnsResolution(),
            GatewayReachable(),
            TargetReachability(),
            InterfaceHealth(),
            WifiSignal(),
            UnexpectedListener(),
            # security
            SecurityUpdatesPending(),
            FirewallEnabled(),
            AntivirusActive(),
            DiskEncryption(),
            CertificateExpiry(),
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


def check_overrides(check_id: str, thresholds: Mapping[str, Any]) -> None:
    """ValueError naming the option (checks.ID.thresholds.FIELD) unless `check_id` is known
    and `thresholds` are valid overrides for it: for config and policy validation."""
    check = CHECKS.get(check_id)
    if check is None:
        raise ValueError(f"checks.{check_id}: unknown check (known: {', '.join(sorted(CHECKS))})")
    try:
        check.thresholds(dict(thresholds))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"checks.{check_id}.thresholds.{field}: {first['msg']}") from None
