"""The routing table: `ip -j route` (IPv4 and IPv6) where iproute2 is installed, else
/proc/net/route (IPv4 only) on Linux. Parsers are pure and tested on recorded outputs."""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass
from typing import Any, Literal

from agent.facts.command import read_text, run_command
from agent.facts.models import Unavailable

MAX_ROUTES = 500
_RTF_GATEWAY = 0x0002


@dataclass(frozen=True)
class Route:
    destination: str
    """"default" or a prefix such as "192.0.2.0/24"."""
    gateway: str
    interface: str
    metric: int | None = None
    source: str = ""
    protocol: str = ""


@dataclass(frozen=True)
class RoutesFacts:
    source: str
    """"ip -j route" or "/proc/net/route"."""
    routes: tuple[Route, ...]


def parse_ip_json_routes(text: str) -> tuple[Route, ...]:
    """Routes in `ip -j route` output; ValueError if it is not that."""
    data: Any = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("ip -j route did not print a list")
    routes = []
    for item in data[:MAX_ROUTES]:
        if not isinstance(item, dict):
            continue
        metric = item.get("metric")
        routes.append(
            Route(
                destination=str(item.get("dst", "")),
                gateway=str(item.get("gateway", "")),
                interface=str(item.get("dev", "")),
                metric=metric if isinstance(metric, int) else None,
                source=str(item.get("prefsrc", "")),
                protocol=str(item.get("protocol", "")),
            )
        )
    return tuple(routes)


def parse_proc_net_routes(
    text: str, byteorder: Literal["little", "big"] = sys.byteorder
) -> tuple[Route, ...]:
    """Every route in /proc/net/route (addresses are hex u32 in host order)."""

    def address(hex_text: str) -> str:
        return socket.inet_ntoa(int(hex_text, 16).to_bytes(4, byteorder))

    routes = []
    for line in text.splitlines()[1 : MAX_ROUTES + 1]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination, gateway = address(fields[1]), address(fields[2])
            flags, metric = int(fields[3], 16), int(fields[6])
            prefix = bin(int(fields[7], 16)).count("1")
        except (ValueError, OverflowError):
            continue
        routes.append(
            Route(
                destination="default" if prefix == 0 else f"{destination}/{prefix}",
                gateway=gateway if flags & _RTF_GATEWAY else "",
                interface=fields[0],
                metric=metric,
            )
        )
    return tuple(routes)


def routes() -> RoutesFacts | Unavailable:
    """This machine's routes, IPv4 and (with iproute2) IPv6."""
    if not sys.platform.startswith("linux"):
        return Unavailable(f"reading the routing table is not supported on {sys.platform} yet")
    found: list[Route] = []
    for family in ("-4", "-6"):
        done = run_command(["ip", "-j", family, "route", "show"], timeout_s=5)
        if isinstance(done, Unavailable):
            break
        try:
            found.extend(parse_ip_json_routes(done.stdout))
        except ValueError:
            break
    else:
        return RoutesFacts("ip -j route", tuple(found[:MAX_ROUTES]))
    text = read_text("/proc/net/route")
    if isinstance(text, Unavailable):
        return text
    return RoutesFacts("/proc/net/route", parse_proc_net_routes(text))
