"""Listening sockets: address scopes, and this process's own sockets seen through psutil.

The sockets are opened here on 127.0.0.1, ::1 and 0.0.0.0 with port 0; nothing connects from
outside and no traffic leaves the machine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import psutil
import pytest

from agent.facts.models import Unavailable
from agent.facts.network.listeners import address_scope, from_psutil, listening_sockets
from agent.facts.network.models import Listener, ListenersFacts


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("0.0.0.0", "all"),
        ("::", "all"),
        ("*", "all"),
        ("", "all"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.53", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:0.0.0.0", "all"),
        ("192.0.2.10", "specific"),
        ("fe80::1%eth0", "specific"),
        ("2001:db8::1", "specific"),
        ("not-an-address", "specific"),
    ],
)
def test_address_scope(address: str, scope: str) -> None:
    assert address_scope(address) == scope


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def own_sockets() -> Iterator[dict[str, socket.socket]]:
    """Listening TCP and bound UDP sockets of this process, on loopback and on all interfaces."""
    opened: dict[str, socket.socket] = {}
    specs = [
        ("tcp_loopback", socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
        ("tcp_all", socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0"),
        ("udp_loopback", socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
        ("udp_all", socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0"),
    ]
    if has_ipv6_loopback():
        specs.append(("tcp6_loopback", socket.AF_INET6, socket.SOCK_STREAM, "::1"))
    try:
        for name, family, kind, address in specs:
            sock = socket.socket(family, kind)
            opened[name] = sock
            sock.bind((address, 0))
            if kind == socket.SOCK_STREAM:
                sock.listen()
        yield opened
    finally:
        for sock in opened.values():
            sock.close()


def port(sock: socket.socket) -> int:
    found: int = sock.getsockname()[1]
    return found


def mine(facts: ListenersFacts, sock: socket.socket) -> list[Listener]:
    return [ln for ln in facts.listeners if ln.port == port(sock) and ln.pid == os.getpid()]


Gatherer = Callable[[], ListenersFacts | Unavailable]
# The platform's own path (sock_diag on Linux) and the portable psutil one must agree.
GATHERERS = pytest.mark.parametrize(
    "gather", [listening_sockets, from_psutil], ids=["os", "psutil"]
)


@GATHERERS
def test_own_listeners_are_reported_with_scope_and_process(
    own_sockets: dict[str, socket.socket], gather: Gatherer
) -> None:
    facts = gather()
    if isinstance(facts, Unavailable):  # e.g. macOS without root
        assert facts.reason
        pytest.skip(facts.reason)
    me = psutil.Process().name()
    expected = {
        "tcp_loopback": ("tcp", "127.0.0.1", "loopback"),
        "tcp_all": ("tcp", "0.0.0.0", "all"),
        "udp_loopback": ("udp", "127.0.0.1", "loopback"),
        "udp_all": ("udp", "0.0.0.0", "all"),
        "tcp6_loopback": ("tcp", "::1", "loopback"),
    }
    for name, sock in own_sockets.items():
        protocol, address, scope = expected[name]
        found = [ln for ln in mine(facts, sock) if ln.protocol == protocol]
        assert found == [Listener(protocol, address, port(sock), scope, os.getpid(), me)], name


@GATHERERS
def test_connected_sockets_are_not_listeners(
    own_sockets: dict[str, socket.socket], gather: Gatherer
) -> None:
    server = own_sockets["tcp_loopback"]
    with (
        socket.create_connection(("127.0.0.1", port(server)), timeout=5) as client,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_client,
    ):
        accepted, _ = server.accept()
        with accepted:
            udp_client.connect(("127.0.0.1", port(own_sockets["udp_loopback"])))
            facts = gather()
            if isinstance(facts, Unavailable):
                pytest.skip(facts.reason)
            for sock in (client, udp_client):
                assert mine(facts, sock) == []
            # The accepted connection shares the listener's port but is not listening.
            assert len(mine(facts, server)) == 1


@GATHERERS
def test_listeners_are_sorted_and_unique(gather: Gatherer) -> None:
    facts = gather()
    if isinstance(facts, Unavailable):
        pytest.skip(facts.reason)
    keys = [(ln.port, ln.protocol, ln.address, ln.pid or 0) for ln in facts.listeners]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))
    for ln in facts.listeners:
        assert 0 <= ln.port <= 65535
        assert ln.scope == address_scope(ln.address)


def test_both_gatherers_see_the_same_listeners(own_sockets: dict[str, socket.socket]) -> None:
    by_os, by_psutil = listening_sockets(), from_psutil()
    if isinstance(by_os, Unavailable) or isinstance(by_psutil, Unavailable):
        pytest.skip("listening sockets not readable here")
    ours = {port(sock) for sock in own_sockets.values()}

    def seen(facts: ListenersFacts) -> set[tuple[str, str, int, str]]:
        return {(ln.protocol, ln.address, ln.port, ln.scope) for ln in facts.listeners}

    assert {row for row in seen(by_os) if row[2] in ours} == {
        row for row in seen(by_psutil) if row[2] in ours
    }
