"""LiveSecurity: security facts read from this machine, dispatched to the platform's module."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.facts.models import Unavailable
from agent.facts.security import certificates as tls
from agent.facts.security import clamav
from agent.facts.security.models import (
    AntivirusFacts,
    AntivirusProduct,
    CertificatesFacts,
    DiskEncryptionFacts,
    FirewallFacts,
)

# Only this platform's module: the others' code would sit in memory unused.
if sys.platform == "win32":
    from agent.facts.security import windows
elif sys.platform == "darwin":
    from agent.facts.security import macos
else:
    from agent.facts.security import linux

_CLAMAV_LOOKED_FOR = "ClamAV (clamd, freshclam, clamscan, signature databases)"


def _unsupported(what: str) -> Unavailable:
    return Unavailable(f"{what} is not known on this OS ({sys.platform})")


class LiveSecurity:
    """Mixed into LiveFacts. No __init__ of its own: LiveFacts sets `state_dir`."""

    state_dir: Path | None
    """Where facts that need memory across runs keep it; None keeps it in memory only."""

    def firewall(self) -> FirewallFacts | Unavailable:
        if sys.platform.startswith("linux"):
            return linux.firewall()
        if sys.platform == "win32":
            return windows.firewall()
        if sys.platform == "darwin":
            return macos.firewall()
        return _unsupported("the firewall")

    def antivirus(self) -> AntivirusFacts | Unavailable:
        now = datetime.now(UTC)
        if sys.platform == "win32":
            return windows.antivirus(now)
        products: list[AntivirusProduct] = []
        looked_for = [_CLAMAV_LOOKED_FOR]
        if sys.platform == "darwin":
            xprotect = macos.xprotect(now)
            if isinstance(xprotect, Unavailable):
                looked_for.append(f"XProtect: {xprotect.reason}")
            else:
                products.append(xprotect)
        found = clamav.clamav(now.timestamp())
        if found is not None:
            products.append(found)
        if sys.platform.startswith("linux"):
            products.extend(linux.installed_agents())
            looked_for.extend(name for name, _ in linux.KNOWN_AGENTS)
        return AntivirusFacts(tuple(products), complete=False, looked_for=tuple(looked_for))

    def disk_encryption(self, mountpoints: Sequence[str]) -> DiskEncryptionFacts | Unavailable:
        if sys.platform.startswith("linux"):
            return linux.disk_encryption(mountpoints)
        if sys.platform == "win32":
            return windows.disk_encryption(mountpoints)
        if sys.platform == "darwin":
            return macos.disk_encryption(mountpoints)
        return _unsupported("disk encryption")

    def certificates(
        self, endpoints: Sequence[str], timeout_s: float
    ) -> CertificatesFacts | Unavailable:
        return tls.certificates(endpoints, timeout_s)

    def security_inventory(self) -> dict[str, Any]:
        # Certificates are left out: their endpoints belong to the check's policy, not the PC.
        return {
            "firewall": _plain(self.firewall()),
            "antivirus": _plain(self.antivirus()),
            "disk_encryption": _plain(self.disk_encryption(())),
        }


def _plain(facts: Any) -> Any:
    """Facts as JSON types; Unavailable as {"unavailable": reason}. Ages are dropped: they
    change every minute, and the inventory is sent again only when something changed."""
    if isinstance(facts, Unavailable):
        return {"unavailable": facts.reason}
    return _json(dataclasses.asdict(facts))


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if k != "definitions_age_days"}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
