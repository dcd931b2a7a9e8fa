"""sock_diag: netlink replies parsed from recordings, owners in a recorded /proc, then live."""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from pathlib import Path

import psutil
import pytest

from agent.facts.network import sockdiag
from agent.facts.network.listeners import from_sock_diag
from agent.facts.network.models import Listener
from agent.facts.network.sockdiag import DiagSocket

FIXTURES = Path(__file__).parents[3] / "fixtures" / "network"
TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP


def datagrams(name: str) -> list[bytes]:
    lines = (FIXTURES / name).read_text(encoding="ascii").splitlines()
    return [bytes.fromhex(line) for line in lines if line and not line.startswith("#")]


def test_request_is_a_dump_of_one_family_and_protocol() -> None:
    packet = sockdiag.request(socket.AF_INET6, TCP, 1 << sockdiag.TCP_LISTEN, sequence=7)
    length, kind, flags, sequence, port_id = struct.unpack_from("=IHHII", packet)
    assert (length, kind, sequence, port_id) == (len(packet), 20, 7, 0)
    assert flags == sockdiag.NLM_F_REQUEST | sockdiag.NLM_F_DUMP
    family, protocol, ext, pad, states = struct.unpack_from("=BBBBI", packet, 16)
    assert (family, protocol, ext, pad, states) == (socket.AF_INET6, TCP, 0, 0, 1 << 10)
    assert len(packet) == 16 + 56 and packet[24:] == bytes(48)  # any socket id


def test_parse_recorded_ipv4_listeners() -> None:
    first, last = datagrams("sock_diag_inet_tcp_listen.hex")
    found, done = sockdiag.parse(first, TCP)
    assert not done
    assert len(found) == 9
    assert found[0] == DiagSocket(socket.AF_INET, TCP, 10, "127.0.0.1", 3306, 0, 107, 9975)
    assert DiagSocket(socket.AF_INET, TCP, 10, "0.0.0.0", 2024, 0, 0, 502) in found
    assert sockdiag.parse(last, TCP) == ([], True)


def test_parse_recorded_ipv6_listeners() -> None:
    first, _ = datagrams("sock_diag_inet6_tcp_listen.hex")
    found, _ = sockdiag.parse(first, TCP)
    assert [(s.address, s.port, s.inode) for s in found] == [
        ("::1", 6379, 5126),
        ("::1", 4369, 6598),
    ]


def test_parse_a_netlink_error() -> None:
    body = struct.pack("=i", -errno.EPERM) + bytes(16)
    packet = struct.pack("=IHHII", 16 + len(body), sockdiag.NLMSG_ERROR, 0, 1, 0) + body
    with pytest.raises(PermissionError):
        sockdiag.parse(packet, TCP)


def test_parse_a_truncated_reply() -> None:
    first, _ = datagrams("sock_diag_inet_tcp_listen.hex")
    with pytest.raises(OSError, match="truncated"):
        sockdiag.parse(first[:100], TCP)


def fake_proc(root: Path, fds: dict[int, dict[int, str]]) -> Path:
    """A recorded /proc: each pid's fd directory with its links."""
    for pid, links in fds.items():
        fd_dir = root / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        for fd, target in links.items():
            os.symlink(target, fd_dir / str(fd))
    (root / "self").mkdir()
    return root


def test_owners_are_found_once_then_confirmed(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path, {812: {3: "/dev/null", 5: "socket:[4699]"}, 900: {4: "socket:[5125]"}}
    )
    owners = sockdiag.Owners(str(proc))
    assert owners.pids([4699, 5125, 502]) == {4699: 812, 5125: 900, 502: None}
    # The fd moved (the first holder closed it after passing it on): a failed confirmation
    # walks /proc again.
    os.remove(proc / "900" / "fd" / "4")
    os.symlink("socket:[5125]", proc / "812" / "fd" / "9")
    assert owners.pids([4699, 5125]) == {4699: 812, 5125: 812}


def test_the_lowest_pid_owns_a_shared_socket(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {1201: {6: "socket:[777]"}, 1200: {6: "socket:[777]"}})
    assert sockdiag.Owners(str(proc)).pids([777]) == {777: 1200}


def test_owners_without_a_proc(tmp_path: Path) -> None:
    assert sockdiag.Owners(str(tmp_path / "none")).pids([1, 2]) == {1: None, 2: None}


def test_from_sock_diag_builds_listeners(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {os.getpid(): {5: "socket:[4699]"}})
    sockets = [
        DiagSocket(socket.AF_INET, TCP, 10, "127.0.0.1", 5432, 0, 101, 4699),
        DiagSocket(socket.AF_INET6, UDP, 7, "::", 5353, 0, 0, 8123),
        DiagSocket(socket.AF_INET, TCP, 10, "0.0.0.0", 22, 0, 0, 900),
    ]
    found = from_sock_diag(sockets, sockdiag.Owners(str(proc)))
    assert found.listeners == (
        Listener("tcp", "0.0.0.0", 22, "all"),
        Listener("udp", "::", 5353, "all"),
        Listener("tcp", "127.0.0.1", 5432, "loopback", os.getpid(), psutil.Process().name()),
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="netlink is Linux's")
def test_listening_here_sees_our_sockets_and_not_our_clients() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bound,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as connected,
    ):
        server.bind(("127.0.0.1", 0))
        server.listen()
        bound.bind(("0.0.0.0", 0))
        connected.connect(("127.0.0.1", bound.getsockname()[1]))
        server_port, bound_port = server.getsockname()[1], bound.getsockname()[1]
        client_port = connected.getsockname()[1]
        try:
            found = sockdiag.listening()
        except OSError as exc:
            pytest.skip(f"sock_diag refused here: {exc}")
    ports = {(s.protocol, s.address, s.port) for s in found}
    assert (TCP, "127.0.0.1", server_port) in ports
    assert (UDP, "0.0.0.0", bound_port) in ports
    assert all(port != client_port for _, _, port in ports)
