"""LiveNetwork: network facts read from this machine."""

from __future__ import annotations

from pathlib import Path


class LiveNetwork:
    """Mixed into LiveFacts. No __init__ of its own: LiveFacts sets `state_dir`."""

    state_dir: Path | None
    """Where facts that need memory across runs keep it; None keeps it in memory only."""
