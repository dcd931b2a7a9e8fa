"""Typed, frozen network facts: DNS servers, target reachability, Wi-Fi, listeners, counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.facts.models import GatewayFacts, InterfacesFacts

# --- DNS servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsServer:
    address: str
    interface: str = ""
    """The interface it was configured on, where the OS says (Windows, macOS)."""
    domain: str = ""
    """Only names in this domain go to it (macOS split DNS, e.g. a VPN); "" means all names."""


@dataclass(frozen=True)
class DnsServersFacts:
    servers: tuple[DnsServer, ...]
    search_domains: tuple[str, ...]
    source: str
    """Where they were read: a file path, or the command that listed them."""
    local_stub: str | None = None
    """A local caching resolver the system asks first (systemd-resolved's 127.0.0.53), which
    forwards to `servers`; None when the system asks `servers` directly."""


# --- reachability of configured targets ----------------------------------------------------------


@dataclass(frozen=True)
class TargetReach:
    target: str
    """As configured: "host" (ICMP, TCP fallback) or "host:port" (TCP connect to that port)."""
    probed: GatewayFacts | None
    """The probes and their answers; None when the target could not be probed at all."""
    resolved: bool = True
    """False when the name did not resolve: from this PC the target is unreachable."""
    error: str = ""
    """Why it could not be probed, or why the last lost probe failed (e.g. refused)."""


@dataclass(frozen=True)
class TargetsFacts:
    targets: tuple[TargetReach, ...]


# --- Wi-Fi ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WifiLink:
    interface: str
    connected: bool
    ssid: str | None = None
    """None where the OS does not tell without extra tools or permission."""
    signal_dbm: float | None = None
    noise_dbm: float | None = None
    quality_percent: float | None = None
    """Link quality as the OS rates it, 0-100; None where it gives only dBm."""


@dataclass(frozen=True)
class WifiFacts:
    links: tuple[WifiLink, ...]
    """Every Wi-Fi interface found; never empty (no interface is Unavailable)."""


# --- listening sockets ---------------------------------------------------------------------------

Scope = Literal["all", "loopback", "specific"]
"""Where a socket listens: every interface (0.0.0.0, ::), loopback only, or one address."""


@dataclass(frozen=True)
class Listener:
    protocol: Literal["tcp", "udp"]
    address: str
    port: int
    scope: Scope
    pid: int | None = None
    process: str = ""
    """The owning process's name; "" when the OS does not let us see it."""


@dataclass(frozen=True)
class ListenersFacts:
    listeners: tuple[Listener, ...]
    """TCP sockets in LISTEN state and unconnected UDP sockets (UDP has no listen state)."""


# --- interface counters over time ----------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceSampleFacts:
    """The interfaces now, with the previous sample so a pure check can judge counter growth."""

    current: InterfacesFacts
    previous: InterfacesFacts | None = None
    """The sample taken the last time this was asked; None on the first call."""
    elapsed_seconds: float | None = None
    """Seconds between `previous` and `current` (monotonic clock); None without previous."""
