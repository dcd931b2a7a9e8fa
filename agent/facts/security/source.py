"""The security part of FactSource: what checks may ask about security."""

from __future__ import annotations

from typing import Protocol


class SecuritySource(Protocol):
    """Methods return facts or Unavailable(reason); they never raise for expected failures."""
