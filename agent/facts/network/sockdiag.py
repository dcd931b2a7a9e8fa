"""Linux listening sockets via netlink sock_diag: the kernel filters, so a cycle costs ~0.1 ms.

psutil.net_connections reads /proc/net/tcp*, which walks the kernel's whole connection hash
table (milliseconds even when idle), then maps every socket to its process by reading every
/proc/<pid>/fd link. Here the kernel returns only the TCP sockets in LISTEN state and the UDP
sockets, and owners are looked up only for sockets not seen before.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10

_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQUEST = struct.Struct("=BBBBI48x")  # inet_diag_req_v2; its socket id left zero: all
_DIAG_MSG_LEN = 72  # struct inet_diag_msg
_RECV_BYTES = 1 << 17
_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class DiagSocket:
    family: int
    protocol: int
    state: int
    address: str
    port: int
    remote_port: int
    uid: int
    inode: int


def request(family: int, protocol: int, states: int, sequence: int = 1) -> bytes:
    """A netlink dump request for the sockets of one family and protocol in `states` (a mask)."""
    body = _DIAG_REQUEST.pack(family, protocol, 0, 0, states)
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0
    )
    return header + body


def parse(data: bytes, protocol: int) -> tuple[list[DiagSocket], bool]:
    """The sockets in one netlink reply datagram, and whether the dump is done.

    Raises OSError for a netlink error message (the kernel's errno, negated, comes first).
    """
    found: list[DiagSocket] = []
    offset = 0
    while offset + _NLMSG_HEADER.size <= len(data):
        length, kind, _, _, _ = _NLMSG_HEADER.unpack_from(data, offset)
        if length < _NLMSG_HEADER.size or offset + length > len(data):
            raise OSError("truncated netlink message")
        body = data[offset + _NLMSG_HEADER.size : offset + length]
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", body)
            raise OSError(-error, os.strerror(-error) if error else "netlink error")
        if kind == SOCK_DIAG_BY_FAMILY and len(body) >= _DIAG_MSG_LEN:
            found.append(_diag_socket(body, protocol))
        offset += (length + 3) & ~3  # messages are 4-byte aligned
    return found, False


def _diag_socket(body: bytes, protocol: int) -> DiagSocket:
    family, state = body[0], body[1]
    port, remote_port = struct.unpack_from("!HH", body, 4)
    raw = body[8:12] if family == socket.AF_INET else body[8:24]
    uid, inode = struct.unpack_from("=II", body, 64)
    return DiagSocket(
        family, protocol, state, socket.inet_ntop(family, raw), port, remote_port, uid, inode
    )


def dump(family: int, protocol: int, states: int) -> list[DiagSocket]:
    """Ask the kernel for the sockets; OSError when netlink or sock_diag is not available."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(_TIMEOUT_S)
        sock.send(request(family, protocol, states))
        found: list[DiagSocket] = []
        done = False
        while not done:
            more, done = parse(sock.recv(_RECV_BYTES), protocol)
            found.extend(more)
        return found


def listening() -> list[DiagSocket]:
    """TCP sockets in LISTEN state and unconnected UDP sockets, IPv4 and IPv6."""
    found: list[DiagSocket] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        found.extend(dump(family, socket.IPPROTO_TCP, 1 << TCP_LISTEN))
        udp = dump(family, socket.IPPROTO_UDP, 0xFFFFFFFF)
        found.extend(s for s in udp if s.remote_port == 0)  # a connected UDP socket is a client
    return found


# --- socket owners -------------------------------------------------------------------------------


class Owners:
    """Which process holds each socket inode, remembered between calls.

    A listening socket lives long, so its owner is looked up once: a remembered owner costs one
    readlink to confirm, and only a new (or moved) socket costs a walk over /proc/<pid>/fd.
    Sockets whose owner cannot be seen (another user's process without privileges, another
    PID namespace) are remembered as unknown while they live.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._known: dict[int, tuple[int, int] | None] = {}  # inode -> (pid, fd) or unknown

    def pids(self, inodes: Iterable[int]) -> dict[int, int | None]:
        wanted = set(inodes)
        with self._lock:
            self._known = {i: o for i, o in self._known.items() if i in wanted}
            missing = {i for i in wanted if i not in self._known or not self._confirm(i)}
            if missing:
                found = self._walk(missing)
                for inode in missing:
                    self._known[inode] = found.get(inode)
            return {i: (owner[0] if (owner := self._known[i]) else None) for i in wanted}

    def _confirm(self, inode: int) -> bool:
        owner = self._known[inode]
        if owner is None:
            return True
        pid, fd = owner
        try:
            return os.readlink(f"{self._proc}/{pid}/fd/{fd}") == f"socket:[{inode}]"
        except OSError:
            return False

    def _walk(self, inodes: set[int]) -> dict[int, tuple[int, int]]:
        links = {f"socket:[{inode}]": inode for inode in inodes}
        found: dict[int, tuple[int, int]] = {}
        try:
            pids = sorted(int(name) for name in os.listdir(self._proc) if name.isdigit())
        except OSError:
            return found
        for pid in pids:
            try:
                fds = os.listdir(f"{self._proc}/{pid}/fd")
            except OSError:
                continue  # gone, or another user's process
            for fd in fds:
                try:
                    link = os.readlink(f"{self._proc}/{pid}/fd/{fd}")
                except OSError:
                    continue
                inode = links.get(link)
                # The lowest pid wins: a parent that forked workers sharing the socket.
                if inode is not None and inode not in found:
                    found[inode] = (pid, int(fd))
            if len(found) == len(inodes):
                break
        return found
