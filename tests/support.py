"""Helpers shared by tests: bounded waiting, and check settings that keep traffic on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Network checks aimed at this machine: tests never probe the real gateway or DNS server.
LOOPBACK_CHECKS: dict[str, dict[str, Any]] = {
    "network.gateway": {"thresholds": {"target": "127.0.0.1", "probes": 1}},
    "network.dns": {"thresholds": {"names": ["localhost"]}},
    "network.target_reachability": {"thresholds": {"targets": ["127.0.0.1"], "probes": 1}},
}


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 60.0
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout_s`.

    A bound against hanging, not a timing assertion.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
