"""Reachability of configured targets: "host" by ICMP (TCP fallback), "host:port" by TCP connect."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agent.facts import reachability
from agent.facts.models import GatewayFacts, Unavailable
from agent.facts.network.models import TargetReach, TargetsFacts

MAX_PARALLEL_TARGETS = 8
MAX_HOST_LENGTH = 253


@dataclass(frozen=True)
class Target:
    host: str
    port: int | None = None
    """None: any sign of life counts (ICMP, or TCP on common ports); else that service port."""


def parse_target(text: str) -> Target:
    """A target from "host", "host:port", "[v6addr]:port" or a bare IPv6 address.

    Raises ValueError when it is none of those.
    """
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: expected [address] or [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a name, an IPv4 address, or an IPv6 address without a port
    if not host or len(host) > MAX_HOST_LENGTH or any(c.isspace() for c in host):
        raise ValueError(f"{text!r}: not a host name or address")
    if port_text is None:
        return Target(host)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return Target(host, int(port_text))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def tcp_connect_probe(
    family: int, address: str, port: int, probes: int, timeout_s: float
) -> tuple[GatewayFacts, str]:
    """Time `probes` full TCP connects to one service port, and the last failure's reason.

    Unlike reachability.tcp_answer, a refused connection is a failure here: the host is up,
    but the service the target names is not.
    """
    rtts: list[float] = []
    last_error = ""
    for _ in range(probes):
        started = time.perf_counter()
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                sock.connect((address, port))
            rtts.append((time.perf_counter() - started) * 1000.0)
        except OSError as exc:
            last_error = _error_text(exc)
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EAFNOSUPPORT):
                raise  # this machine may not connect at all: not a lost probe
    return GatewayFacts(address, f"tcp:{port}", probes, len(rtts), tuple(rtts)), last_error


def probe_target(
    text: str,
    probes: int,
    timeout_s: float,
    *,
    resolver: reachability.Resolver = reachability.system_addresses,
) -> TargetReach:
    """Resolve and probe one configured target; never raises."""
    try:
        target = parse_target(text)
    except ValueError as exc:
        return TargetReach(text, None, error=str(exc))
    lookup = reachability.resolve([target.host], timeout_s, resolver=resolver).lookups[0]
    if lookup.error is not None or not lookup.addresses:
        why = f"cannot resolve {target.host}: {lookup.error or 'no address'}"
        return TargetReach(text, None, resolved=False, error=why)
    address = lookup.addresses[0]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if target.port is None:
        found = reachability.probe(address, probes, timeout_s)
        if isinstance(found, Unavailable):
            return TargetReach(text, None, error=found.reason)
        return TargetReach(text, found)
    try:
        facts, last_error = tcp_connect_probe(family, address, target.port, probes, timeout_s)
    except OSError as exc:
        return TargetReach(text, None, error=f"cannot probe {text}: {_error_text(exc)}")
    return TargetReach(text, facts, error=last_error)


def probe_targets(
    targets: Sequence[str],
    probes: int,
    timeout_s: float,
    *,
    resolver: reachability.Resolver = reachability.system_addresses,
) -> TargetsFacts:
    """Probe every target, several at once, so slow ones do not add up."""
    if not targets:
        return TargetsFacts(())
    workers = min(len(targets), MAX_PARALLEL_TARGETS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="remdiag-target") as pool:
        found = pool.map(
            lambda text: probe_target(text, probes, timeout_s, resolver=resolver), targets
        )
        return TargetsFacts(tuple(found))
