"""The network part of FactSource: what checks may ask about network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from agent.facts.models import Unavailable
from agent.facts.network.models import (
    DnsServersFacts,
    InterfaceSampleFacts,
    ListenersFacts,
    TargetsFacts,
    WifiFacts,
)


class NetworkSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""

    def dns_servers(self) -> DnsServersFacts | Unavailable:
        """The DNS servers this machine asks, and its search domains."""
        ...

    def target_reachability(
        self, targets: Sequence[str], probes: int, timeout_s: float
    ) -> TargetsFacts | Unavailable:
        """Probe each "host" (ICMP, else TCP) or "host:port" (TCP connect to that port)."""
        ...

    def wifi(self) -> WifiFacts | Unavailable:
        """Signal of each Wi-Fi interface; Unavailable("no Wi-Fi interface") on wired machines."""
        ...

    def listeners(self) -> ListenersFacts | Unavailable:
        """Listening TCP sockets and bound UDP sockets, with their owning process."""
        ...

    def interface_sample(self) -> InterfaceSampleFacts | Unavailable:
        """The interfaces now, with the previous call's sample to judge counter growth."""
        ...

    def network_inventory(self) -> dict[str, Any]:
        """The network make-up for the collector's inventory, JSON-able and bounded."""
        ...
