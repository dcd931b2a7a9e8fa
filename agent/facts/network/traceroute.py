"""The path to a host, hop by hop: ICMP echo requests with a growing TTL on a raw socket.

Raw ICMP sockets need administrator rights (root or CAP_NET_RAW on Linux). Without them the
`traceroute` program is used where installed (it is setuid or uses its own tricks); otherwise
the path is Unavailable, saying why. IPv4 only for the socket prober.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import struct
import time
from dataclasses import dataclass

from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.reachability import echo_request

_ECHO_REPLY = 0
_TIME_EXCEEDED = 11
_UNREACHABLE = 3
_ids = itertools.count(os.getpid() + 7919)


@dataclass(frozen=True)
class Hop:
    ttl: int
    address: str
    """Who answered; empty when nobody did within the timeout."""
    rtt_ms: float | None


@dataclass(frozen=True)
class TraceFacts:
    target: str
    method: str
    """"icmp-ttl" (raw socket) or "traceroute" (the program)."""
    hops: tuple[Hop, ...]
    reached: bool


def trace(address: str, max_hops: int, timeout_s: float) -> TraceFacts | Unavailable:
    """Hops to `address` (an IP address), at most `max_hops`, each waited for `timeout_s`."""
    if ":" in address:
        return _with_program(address, max_hops, timeout_s, "TTL probing over IPv6")
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError as exc:
        why = f"raw ICMP sockets are not permitted ({exc.strerror or exc}; they need root)"
        return _with_program(address, max_hops, timeout_s, why)
    ident = next(_ids) & 0xFFFF
    hops: list[Hop] = []
    with sock:
        for ttl in range(1, max_hops + 1):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            hop, done = _probe(sock, address, ident, ttl, timeout_s)
            hops.append(hop)
            if done:
                return TraceFacts(address, "icmp-ttl", tuple(hops), reached=True)
    return TraceFacts(address, "icmp-ttl", tuple(hops), reached=False)


def _probe(
    sock: socket.socket, address: str, ident: int, seq: int, timeout_s: float
) -> tuple[Hop, bool]:
    started = time.perf_counter()
    deadline = started + timeout_s
    try:
        sock.sendto(echo_request(socket.AF_INET, ident, seq, b"remdiag-trace"), (address, 0))
        while (remaining := deadline - time.perf_counter()) > 0:
            sock.settimeout(remaining)
            packet, (sender, _) = sock.recvfrom(2048)
            kind = _matches(packet, ident, seq)
            if kind is None:
                continue
            rtt = round((time.perf_counter() - started) * 1000.0, 2)
            return Hop(seq, str(sender), rtt), kind in (_ECHO_REPLY, _UNREACHABLE)
    except OSError:
        pass  # timed out, or the network is unreachable from here: an unanswered hop
    return Hop(seq, "", None), False


def _matches(packet: bytes, ident: int, seq: int) -> int | None:
    """The ICMP type of a reply to our probe (echo reply, time exceeded, unreachable), or None."""
    if len(packet) < 20:
        return None
    icmp = packet[(packet[0] & 0x0F) * 4 :]
    if len(icmp) < 8:
        return None
    kind = icmp[0]
    if kind == _ECHO_REPLY:
        got = struct.unpack("!HH", icmp[4:8])
        return kind if got == (ident, seq) else None
    if kind in (_TIME_EXCEEDED, _UNREACHABLE):
        inner = icmp[8:]
        if len(inner) < 20:
            return None
        quoted = inner[(inner[0] & 0x0F) * 4 :]
        if len(quoted) >= 8 and struct.unpack("!HH", quoted[4:8]) == (ident, seq):
            return kind
    return None


_TRACEROUTE_LINE = re.compile(r"^\s*(\d+)\s+(\S+)(?:\s+([\d.]+) ms)?")


def parse_traceroute(text: str) -> tuple[Hop, ...]:
    """Hops in `traceroute -n -q 1` output; "*" is an unanswered hop."""
    hops = []
    for line in text.splitlines()[1:]:
        match = _TRACEROUTE_LINE.match(line)
        if match is None:
            continue
        address = "" if match[2] == "*" else match[2]
        rtt = float(match[3]) if match[3] else None
        hops.append(Hop(int(match[1]), address, rtt))
    return tuple(hops)


def _with_program(
    address: str, max_hops: int, timeout_s: float, why_not_socket: str
) -> TraceFacts | Unavailable:
    wait = str(max(1, round(timeout_s)))
    done = run_command(
        ["traceroute", "-n", "-q", "1", "-w", wait, "-m", str(max_hops), address],
        timeout_s=max_hops * timeout_s + 5,
    )
    if isinstance(done, Unavailable):
        return Unavailable(f"cannot trace the path: {why_not_socket}, and {done.reason}")
    hops = parse_traceroute(done.stdout)
    reached = bool(hops) and hops[-1].address == address
    return TraceFacts(address, "traceroute", hops, reached)
