"""The hardware part of FactSource: what checks may ask about hardware."""

from __future__ import annotations

from typing import Any, Protocol

from agent.facts.hardware.models import (
    BatteriesFacts,
    DiskIoFacts,
    DiskUsageHistoryFacts,
    SensorsFacts,
    SmartFacts,
)
from agent.facts.models import DisksFacts, Unavailable


class HardwareSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""

    def disk_io(self) -> DiskIoFacts | Unavailable:
        """Cumulative I/O counters of each disk since boot."""
        ...

    def smart(self) -> SmartFacts | Unavailable:
        """SMART health of each drive smartctl can read; cached for minutes."""
        ...

    def batteries(self) -> BatteriesFacts | Unavailable:
        """The machine's own batteries; Unavailable (saying so) when it has none."""
        ...

    def sensors(self) -> SensorsFacts | Unavailable:
        """Temperature sensors, with their own high and critical marks, and fans."""
        ...

    def disk_usage_history(self, current: DisksFacts) -> DiskUsageHistoryFacts | Unavailable:
        """Add `current` to the kept usage history and return each filesystem's history."""
        ...

    def hardware_inventory(self) -> dict[str, Any]:
        """The hardware facts for the inventory, as JSON-able data that changes rarely."""
        ...
