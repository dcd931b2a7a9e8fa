"""The software part of FactSource: what checks may ask about software."""

from __future__ import annotations

from typing import Protocol


class SoftwareSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""
