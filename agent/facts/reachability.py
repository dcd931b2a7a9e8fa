"""Reachability facts: DNS lookups, the default gateway, ICMP and TCP probes.

Everything here sends real traffic or reads OS tables; callers (LiveFacts) pick the targets.
"""

from __future__ import annotations

import errno
import itertools
import os
import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Literal

from agent.facts.models import DnsFacts, DnsLookup, GatewayFacts, Unavailable

DEFAULT_TCP_PORTS: tuple[int, ...] = (53, 443, 80)
"""Ports a router commonly answers on (DNS forwarder, admin UI); a refusal is an answer too."""

MAX_PARALLEL_LOOKUPS = 16


def _error_text(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


# --- name resolution ---------------------------------------------------------------------------


Resolver = Callable[[str], Sequence[str]]
"""Turns a name into addresses, raising OSError when it cannot."""


def system_addresses(name: str) -> tuple[str, ...]:
    """The addresses the system resolver (hosts file, DNS, ...) gives for `name`, in order."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _timed(resolver: Resolver, name: str) -> tuple[tuple[str, ...], float]:
    started = time.perf_counter()
    addresses = tuple(resolver(name))
    return addresses, (time.perf_counter() - started) * 1000.0


def resolve(
    names: Sequence[str], timeout_s: float, *, resolver: Resolver = system_addresses
) -> DnsFacts:
    """Resolve every name, in parallel, each bounded by timeout_s.

    The time is measured inside the worker, so waiting for a free worker is not counted.
    """
    if not names:
        return DnsFacts(lookups=())
    pool = ThreadPoolExecutor(
        max_workers=min(len(names), MAX_PARALLEL_LOOKUPS), thread_name_prefix="remdiag-dns"
    )
    try:
        futures = [pool.submit(_timed, resolver, name) for name in names]
        wait(futures, timeout=timeout_s)
        return DnsFacts(
            tuple(_lookup_result(n, f, timeout_s) for n, f in zip(names, futures, strict=True))
        )
    finally:
        # A stuck lookup cannot be cancelled; its thread ends when the resolver gives up.
        pool.shutdown(wait=False, cancel_futures=True)


def _lookup_result(
    name: str, future: Future[tuple[tuple[str, ...], float]], timeout_s: float
) -> DnsLookup:
    if not future.done():
        future.cancel()
        return DnsLookup(name, (), timeout_s * 1000.0, f"timed out after {timeout_s:g}s")
    exc = future.exception()
    if exc is not None:
        return DnsLookup(name, (), 0.0, _error_text(exc))
    addresses, elapsed_ms = future.result()
    return DnsLookup(name, addresses, elapsed_ms)


# --- default gateway ---------------------------------------------------------------------------

_RTF_UP_GATEWAY = 0x0003
_NO_GATEWAY_HINT = "set the gateway check's target in the policy"


def parse_proc_net_route(
    text: str, byteorder: Literal["little", "big"] = sys.byteorder
) -> str | None:
    """The default gateway in Linux's /proc/net/route text, or None when there is none.

    The kernel prints each address's bytes as a hex u32 in host order ("010200C0" is 192.0.2.1
    on a little-endian machine), hence `byteorder`. With several
    default routes, the lowest metric wins, as the kernel would choose.
    """
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 7 or fields[1] != "00000000":
            continue
        try:
            flags, metric = int(fields[3], 16), int(fields[6])
            packed = int(fields[2], 16).to_bytes(4, byteorder)
        except (ValueError, OverflowError):
            continue
        if flags & _RTF_UP_GATEWAY != _RTF_UP_GATEWAY:
            continue
        address = socket.inet_ntoa(packed)
        if best is None or metric < best[0]:
            best = (metric, address)
    return best[1] if best else None


def default_gateway() -> str | Unavailable:
    """The IPv4 default gateway of this machine (Linux only)."""
    if not sys.platform.startswith("linux"):
        return Unavailable(
            f"finding the default gateway is not supported on {sys.platform}; {_NO_GATEWAY_HINT}"
        )
    try:
        with open("/proc/net/route", encoding="ascii") as route:
            text = route.read()
    except OSError as exc:
        return Unavailable(f"cannot read the routing table: {_error_text(exc)}; {_NO_GATEWAY_HINT}")
    gateway = parse_proc_net_route(text)
    if gateway is None:
        return Unavailable(f"this machine has no default route; {_NO_GATEWAY_HINT}")
    return gateway


# --- reachability probes -----------------------------------------------------------------------

_ids = itertools.count(os.getpid())
# (echo request type, echo reply type, ICMP protocol) per address family.
_ICMP: dict[int, tuple[int, int, int]] = {
    socket.AF_INET: (8, 0, socket.IPPROTO_ICMP),
    socket.AF_INET6: (128, 129, socket.IPPROTO_ICMPV6),
}


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP (or ICMPv6) echo request; the kernel fills in the ICMPv6 checksum itself."""
    kind = _ICMP[family][0]
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    checksum = icmp_checksum(header + payload) if family == socket.AF_INET else 0
    return struct.pack("!BBHHH", kind, 0, checksum, ident, seq) + payload


def _open_icmp_socket(family: int) -> tuple[socket.socket, bool] | None:
    """An unprivileged ping socket, else a raw one; None when neither is permitted."""
    proto = _ICMP[family][2]
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            return socket.socket(family, kind, proto), kind == socket.SOCK_RAW
        except OSError:
            continue
    return None


def _echo_reply(packet: bytes, family: int) -> tuple[int, int] | None:
    """(id, seq) of an echo reply, or None for any other packet."""
    # IPv4 raw sockets (and ping sockets on macOS) hand us the IP header too.
    if family == socket.AF_INET and packet and packet[0] >> 4 == 4:
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8 or packet[0] != _ICMP[family][1]:
        return None
    ident, seq = struct.unpack("!HH", packet[4:8])
    return ident, seq


def icmp_probe(family: int, address: str, probes: int, timeout_s: float) -> GatewayFacts | None:
    """Send `probes` echo requests one after another; None when ICMP sockets are not permitted."""
    opened = _open_icmp_socket(family)
    if opened is None:
        return None
    sock, raw = opened
    ident = next(_ids) & 0xFFFF
    rtts: list[float] = []
    with sock:
        for seq in range(1, probes + 1):
            try:
                rtt = _one_echo(sock, family, raw, address, ident, seq, timeout_s)
            except PermissionError:  # a firewall or security module forbids sending ICMP
                return None
            if rtt is not None:
                rtts.append(rtt)
    return GatewayFacts(address, "icmp", probes, len(rtts), tuple(rtts))


def _one_echo(
    sock: socket.socket,
    family: int,
    raw: bool,
    address: str,
    ident: int,
    seq: int,
    timeout_s: float,
) -> float | None:
    started = time.perf_counter()
    deadline = started + timeout_s
    try:
        sock.sendto(echo_request(family, ident, seq, b"remdiag-probe"), (address, 0))
        while (remaining := deadline - time.perf_counter()) > 0:
            sock.settimeout(remaining)
            reply = _echo_reply(sock.recv(2048), family)
            # Ping sockets get their id rewritten by the kernel, which also filters by it.
            if reply is not None and reply[1] == seq and (reply[0] == ident or not raw):
                return (time.perf_counter() - started) * 1000.0
    except PermissionError:
        raise
    except OSError:  # timeout, unreachable network, ...: the probe is lost
        return None
    return None


# Windows reports the WSA* codes, which differ from its C runtime's errno values.
_ANSWERED = {0, errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", 0)}
_IN_PROGRESS = {
    errno.EINPROGRESS,
    errno.EWOULDBLOCK,
    errno.EAGAIN,
    getattr(errno, "WSAEWOULDBLOCK", errno.EAGAIN),
}


def tcp_answer(family: int, address: str, ports: Sequence[int], timeout_s: float) -> int | None:
    """Connect to every port at once; the first port that answers, or None after timeout_s.

    An accepted or a refused connection both prove the host is up.
    """
    with selectors.DefaultSelector() as selector:
        sockets: list[socket.socket] = []
        try:
            for index, port in enumerate(ports):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setblocking(False)
                result = sock.connect_ex((address, port))
                if result in _ANSWERED:
                    return port
                if result in _IN_PROGRESS:
                    selector.register(sock, selectors.EVENT_WRITE, index)
            deadline = time.perf_counter() + timeout_s
            while selector.get_map() and (remaining := deadline - time.perf_counter()) > 0:
                for key, _ in selector.select(remaining):
                    index = int(key.data)
                    pending = sockets[index]
                    if pending.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in _ANSWERED:
                        return ports[index]
                    selector.unregister(pending)
            return None
        finally:
            for sock in sockets:
                sock.close()


def tcp_probe(
    family: int, address: str, probes: int, timeout_s: float, ports: Sequence[int]
) -> GatewayFacts:
    """Probe with TCP connects; the method names the first port that answered."""
    rtts: list[float] = []
    answered: int | None = None
    for _ in range(probes):
        started = time.perf_counter()
        port = tcp_answer(family, address, ports, timeout_s)
        if port is not None:
            rtts.append((time.perf_counter() - started) * 1000.0)
            answered = answered or port
    method = f"tcp:{answered}" if answered else "tcp:" + ",".join(str(p) for p in ports)
    return GatewayFacts(address, method, probes, len(rtts), tuple(rtts))


def probe(
    target: str,
    probes: int,
    timeout_s: float,
    ports: Sequence[int] = DEFAULT_TCP_PORTS,
) -> GatewayFacts | Unavailable:
    """Is `target` reachable: ICMP echo when permitted, else TCP connects to `ports`.

    Unavailable when `target` cannot be resolved, or this machine cannot open a socket to it.
    """
    lookup = resolve([target], timeout_s).lookups[0]
    if lookup.error is not None or not lookup.addresses:
        return Unavailable(f"cannot resolve {target}: {lookup.error or 'no address'}")
    address = lookup.addresses[0]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        by_icmp = icmp_probe(family, address, probes, timeout_s)
        if by_icmp is not None:
            return by_icmp
        return tcp_probe(family, address, probes, timeout_s, ports)
    except OSError as exc:
        return Unavailable(f"cannot probe {target}: {_error_text(exc)}")


__all__ = [
    "DEFAULT_TCP_PORTS",
    "Resolver",
    "default_gateway",
    "echo_request",
    "icmp_checksum",
    "icmp_probe",
    "parse_proc_net_route",
    "probe",
    "resolve",
    "system_addresses",
    "tcp_answer",
    "tcp_probe",
]
