"""The security part of FactSource: what checks may ask about security."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from agent.facts.models import Unavailable
from agent.facts.security.models import (
    AntivirusFacts,
    CertificatesFacts,
    DiskEncryptionFacts,
    FirewallFacts,
)


class SecuritySource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""

    def firewall(self) -> FirewallFacts | Unavailable:
        """Whether a firewall is on and filters inbound traffic, and which one answered."""
        ...

    def antivirus(self) -> AntivirusFacts | Unavailable:
        """Antivirus products: Security Center's list on Windows, known scanners elsewhere."""
        ...

    def disk_encryption(self, mountpoints: Sequence[str]) -> DiskEncryptionFacts | Unavailable:
        """Encryption of the system disk and of the volumes holding `mountpoints`."""
        ...

    def certificates(
        self, endpoints: Sequence[str], timeout_s: float
    ) -> CertificatesFacts | Unavailable:
        """The TLS certificate each "host:port" endpoint presents, and whether it verifies."""
        ...

    def security_inventory(self) -> dict[str, Any]:
        """Firewall, antivirus and disk encryption as plain JSON for the inventory."""
        ...
