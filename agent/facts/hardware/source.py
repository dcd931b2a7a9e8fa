"""The hardware part of FactSource: what checks may ask about hardware."""

from __future__ import annotations

from typing import Protocol


class HardwareSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""
