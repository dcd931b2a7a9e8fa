"""HOST:PORT addresses in the agent's and the collector's settings: validation and loopback."""

from __future__ import annotations

import ipaddress


def host_port(value: str, *, allow_port_zero: bool = False) -> str:
    """`value` if it reads HOST:PORT (port 0 only where it means "pick a free one")."""
    host, sep, port = value.rpartition(":")
    lowest = 0 if allow_port_zero else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def is_loopback_host(host: str) -> bool:
    """`host` names this machine (localhost, 127.0.0.0/8, ::1); any other name may not."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_address(address: str) -> bool:
    """HOST:PORT names this machine."""
    return is_loopback_host(address.rpartition(":")[0])
