"""LiveNetwork: network facts read from this machine."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent.facts.models import InterfacesFacts, Unavailable
from agent.facts.network import listeners
from agent.facts.network.models import (
    DnsServersFacts,
    InterfaceSampleFacts,
    ListenersFacts,
    TargetsFacts,
    WifiFacts,
)
from agent.facts.network.targets import probe_targets

# Only this platform's module: the others' code would sit in memory unused.
if sys.platform == "win32":
    from agent.facts.network import windows
elif sys.platform == "darwin":
    from agent.facts.network import macos
else:
    from agent.facts.network import linux

DNS_SERVERS_TTL_S = 300.0
"""Windows and macOS spawn a tool to list DNS servers; they change rarely, so keep the answer."""
INVENTORY_MAX_LISTENERS = 64


class _HasInterfaces(Protocol):
    """What interface_sample needs of the class it is mixed into (LiveFacts)."""

    def interfaces(self) -> InterfacesFacts | Unavailable: ...


class _InterfaceMemory:
    """The last interface sample, so the next one can be compared with it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: tuple[float, InterfacesFacts] | None = None


class _Expiring:
    """One value kept for a while; Unavailable answers are not kept."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.lock = threading.Lock()
        self.value: tuple[float, Any] | None = None

    def get(self, read: Callable[[], Any]) -> Any:
        with self.lock:
            now = time.monotonic()
            if self.value is not None and now - self.value[0] < self.ttl_s:
                return self.value[1]
            found = read()
            self.value = None if isinstance(found, Unavailable) else (now, found)
            return found


def _dns_servers_here() -> DnsServersFacts | Unavailable:
    if sys.platform.startswith("linux"):
        return linux.dns_servers()
    if sys.platform == "win32":
        return windows.dns_servers()
    if sys.platform == "darwin":
        return macos.dns_servers()
    return Unavailable(f"listing DNS servers is not supported on {sys.platform}")


def _wifi_here() -> WifiFacts | Unavailable:
    if sys.platform.startswith("linux"):
        return linux.wifi()
    if sys.platform == "win32":
        return windows.wifi()
    if sys.platform == "darwin":
        return macos.wifi()
    return Unavailable(f"reading the Wi-Fi signal is not supported on {sys.platform}")


class LiveNetwork:
    """Mixed into LiveFacts. No __init__ of its own: LiveFacts sets `state_dir`."""

    state_dir: Path | None
    """Where facts that need memory across runs keep it; None keeps it in memory only."""

    def dns_servers(self) -> DnsServersFacts | Unavailable:
        if sys.platform.startswith("linux"):
            return linux.dns_servers()  # two small file reads: cheaper than any cache
        cache: _Expiring = self.__dict__.setdefault(
            "_dns_servers_cache", _Expiring(DNS_SERVERS_TTL_S)
        )
        found: DnsServersFacts | Unavailable = cache.get(_dns_servers_here)
        return found

    def target_reachability(
        self, targets: Sequence[str], probes: int, timeout_s: float
    ) -> TargetsFacts | Unavailable:
        return probe_targets(targets, probes, timeout_s)

    def wifi(self) -> WifiFacts | Unavailable:
        return _wifi_here()

    def listeners(self) -> ListenersFacts | Unavailable:
        return listeners.listening_sockets()

    def interface_sample(self: _HasInterfaces) -> InterfaceSampleFacts | Unavailable:
        # Kept in memory only: after a restart the first sample just has nothing to compare.
        memory: _InterfaceMemory = self.__dict__.setdefault("_interface_memory", _InterfaceMemory())
        with memory.lock:
            current = self.interfaces()
            if isinstance(current, Unavailable):
                return current
            now = time.monotonic()
            previous, memory.last = memory.last, (now, current)
        if previous is None:
            return InterfaceSampleFacts(current)
        return InterfaceSampleFacts(current, previous[1], now - previous[0])

    def network_inventory(self) -> dict[str, Any]:
        return {
            "dns_servers": _dns_inventory(self.dns_servers()),
            "wifi": _wifi_inventory(self.wifi()),
            "listeners": _listeners_inventory(self.listeners()),
        }


def _dns_inventory(found: DnsServersFacts | Unavailable) -> dict[str, Any]:
    if isinstance(found, Unavailable):
        return {"unavailable": found.reason}
    return {
        "servers": [
            {"address": s.address, "interface": s.interface, "domain": s.domain}
            for s in found.servers[:32]
        ],
        "search_domains": list(found.search_domains[:16]),
        "source": found.source,
        "local_stub": found.local_stub,
    }


def _wifi_inventory(found: WifiFacts | Unavailable) -> dict[str, Any]:
    # The signal is a reading that changes by the minute; the check reports it, not inventory.
    if isinstance(found, Unavailable):
        return {"unavailable": found.reason}
    return {
        "interfaces": [
            {"interface": link.interface, "connected": link.connected, "ssid": link.ssid}
            for link in found.links
        ]
    }


def _listeners_inventory(found: ListenersFacts | Unavailable) -> dict[str, Any]:
    if isinstance(found, Unavailable):
        return {"unavailable": found.reason}
    # pids change on every restart and clients' UDP reply sockets come and go: neither is the
    # machine's make-up, and either would make every inventory a diff.
    rows = {
        (ln.protocol, ln.address, ln.port, ln.scope, ln.process): None
        for ln in found.listeners
        if ln.protocol == "tcp" or ln.port < listeners.EPHEMERAL_UDP_FROM
    }
    kept = [
        {"protocol": p, "address": a, "port": n, "scope": s, "process": name}
        for p, a, n, s, name in rows
    ]
    return {
        "listening": kept[:INVENTORY_MAX_LISTENERS],
        "total": len(kept),
        "on_all_interfaces": sum(1 for row in kept if row["scope"] == "all"),
    }
