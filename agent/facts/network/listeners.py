"""Listening sockets: which ports this machine offers, on which addresses, from which process."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable
from typing import Literal

import psutil

from agent.facts.models import Unavailable
from agent.facts.network import sockdiag
from agent.facts.network.models import Listener, ListenersFacts, Scope

# psutil raises its own errors (AccessDenied, ...) besides OSError; RuntimeError covers its
# "not supported on this platform" paths.
_GATHER_ERRORS = (OSError, psutil.Error, RuntimeError)

EPHEMERAL_UDP_FROM = 32768
"""Where the OS's ephemeral ports start (Linux 32768; Windows and macOS 49152): a UDP socket
bound up there is a client waiting for replies (DNS, QUIC, ...), not a service."""


def address_scope(address: str) -> Scope:
    """Where a socket bound to `address` can be reached from.

    0.0.0.0 and :: (and "*", as some platforms print it) take connections on every interface;
    127.0.0.0/8, ::1 and their IPv4-mapped forms only from this machine.
    """
    if address in ("", "*"):
        return "all"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "specific"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "all"
    if ip.is_loopback:
        return "loopback"
    return "specific"


def _process_name(pid: int | None, names: dict[int, str]) -> str:
    if pid is None:
        return ""
    if pid not in names:
        try:
            names[pid] = psutil.Process(pid).name()
        except (psutil.Error, OSError):
            # AccessDenied (another user's process), or it exited since: leave it unnamed.
            names[pid] = ""
    return names[pid]


_owners = sockdiag.Owners()


def listening_sockets() -> ListenersFacts | Unavailable:
    """TCP sockets in LISTEN state and unconnected UDP sockets, each once, sorted by port.

    On Linux the kernel is asked through sock_diag (cheap); elsewhere, or where netlink is
    refused (a seccomp profile, a kernel without inet_diag), psutil is.
    """
    if sys.platform.startswith("linux"):
        try:
            return from_sock_diag(sockdiag.listening(), _owners)
        except OSError:
            pass
    return from_psutil()


def from_sock_diag(
    sockets: Iterable[sockdiag.DiagSocket], owners: sockdiag.Owners
) -> ListenersFacts:
    """Listeners from sock_diag's sockets (already only listening TCP and unconnected UDP)."""
    sockets = list(sockets)
    pids = owners.pids(s.inode for s in sockets)
    names: dict[int, str] = {}
    found: dict[tuple[str, str, int, int | None], Listener] = {}
    for s in sockets:
        protocol: Literal["tcp", "udp"] = "tcp" if s.protocol == socket.IPPROTO_TCP else "udp"
        pid = pids.get(s.inode)
        key = (protocol, s.address, s.port, pid)
        if key not in found:
            found[key] = Listener(
                protocol,
                s.address,
                s.port,
                address_scope(s.address),
                pid,
                _process_name(pid, names),
            )
    return _sorted(found.values())


def from_psutil() -> ListenersFacts | Unavailable:
    """Listeners from psutil's table of every inet socket (Windows, macOS, Linux fallback)."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return Unavailable("no permission to list the listening sockets (macOS needs root)")
    except _GATHER_ERRORS as exc:
        return Unavailable(f"cannot list the listening sockets: {exc or type(exc).__name__}")
    names: dict[int, str] = {}
    found: dict[tuple[str, str, int, int | None], Listener] = {}
    for conn in connections:
        protocol: Literal["tcp", "udp"]
        if conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN:
            protocol = "tcp"
        elif conn.type == socket.SOCK_DGRAM and not conn.raddr:
            protocol = "udp"
        else:
            continue
        if not conn.laddr:
            continue
        address, port = str(conn.laddr[0]), int(conn.laddr[1])
        key = (protocol, address, port, conn.pid)
        if key not in found:
            found[key] = Listener(
                protocol,
                address,
                port,
                address_scope(address),
                conn.pid,
                _process_name(conn.pid, names),
            )
    return _sorted(found.values())


def _sorted(listeners: Iterable[Listener]) -> ListenersFacts:
    return ListenersFacts(
        tuple(sorted(listeners, key=lambda ln: (ln.port, ln.protocol, ln.address, ln.pid or 0)))
    )
