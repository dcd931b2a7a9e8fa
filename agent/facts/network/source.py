"""The network part of FactSource: what checks may ask about network."""

from __future__ import annotations

from typing import Protocol


class NetworkSource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""
