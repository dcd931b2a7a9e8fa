"""The one interface checks gather facts through; agent/facts/live.py implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.facts.hardware.source import HardwareSource
from agent.facts.models import (
    CpuFacts,
    DisksFacts,
    DnsFacts,
    GatewayFacts,
    InterfacesFacts,
    MemoryFacts,
    Unavailable,
    UptimeFacts,
)
from agent.facts.network.source import NetworkSource
from agent.facts.security.source import SecuritySource
from agent.facts.software.source import SoftwareSource


class CoreSource(Protocol):
    def cpu(self) -> CpuFacts | Unavailable: ...

    def memory(self) -> MemoryFacts | Unavailable: ...

    def disks(self, paths: Sequence[str]) -> DisksFacts | Unavailable:
        """Filesystems holding `paths`; every local physical filesystem when `paths` is empty."""
        ...

    def uptime(self) -> UptimeFacts | Unavailable: ...

    def interfaces(self) -> InterfacesFacts | Unavailable: ...

    def dns(self, names: Sequence[str], timeout_s: float) -> DnsFacts | Unavailable:
        """Resolve each name with the system resolver, timing each lookup."""
        ...

    def gateway(
        self, target: str | None, probes: int, timeout_s: float
    ) -> GatewayFacts | Unavailable:
        """Probe `target`, or the default gateway when None."""
        ...


class FactSource(
    CoreSource, HardwareSource, SoftwareSource, NetworkSource, SecuritySource, Protocol
):
    """Everything a check may ask about the machine; each domain declares its own part."""
