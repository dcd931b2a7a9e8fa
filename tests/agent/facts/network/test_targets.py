"""Configured targets: parsing, and probes sent to loopback only (names resolve by a fake)."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence

import pytest

from agent.facts.network.targets import (
    Target,
    parse_target,
    probe_target,
    probe_targets,
    tcp_connect_probe,
)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("fileserver.corp.example", Target("fileserver.corp.example")),
        (" mail.corp.example:443 ", Target("mail.corp.example", 443)),
        ("192.0.2.10", Target("192.0.2.10")),
        ("192.0.2.10:3389", Target("192.0.2.10", 3389)),
        ("2001:db8::10", Target("2001:db8::10")),
        ("[2001:db8::10]", Target("2001:db8::10")),
        ("[2001:db8::10]:8443", Target("2001:db8::10", 8443)),
        ("localhost:65535", Target("localhost", 65535)),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    "text",
    ["", " ", ":80", "host:", "host:0", "host:65536", "host:http", "[::1", "[::1]80", "a b:80"],
)
def test_parse_target_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback TCP port that accepts connections (the kernel completes the handshake)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def loopback_resolver(name: str) -> Sequence[str]:
    """Stands in for DNS: "localhost" is loopback, any other name does not exist."""
    if name in ("localhost", "127.0.0.1", "::1"):
        return ["127.0.0.1"] if name != "::1" else ["::1"]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_tcp_connect_probe_times_every_connect(listening_port: int) -> None:
    facts, error = tcp_connect_probe(socket.AF_INET, "127.0.0.1", listening_port, 3, 2.0)
    assert (facts.target, facts.method, facts.sent, facts.received) == (
        "127.0.0.1",
        f"tcp:{listening_port}",
        3,
        3,
    )
    assert all(rtt >= 0 for rtt in facts.rtt_ms)
    assert error == ""


def test_tcp_connect_probe_counts_a_refusal_as_lost(closed_port: int) -> None:
    facts, error = tcp_connect_probe(socket.AF_INET, "127.0.0.1", closed_port, 2, 2.0)
    assert (facts.sent, facts.received, facts.rtt_ms) == (2, 0, ())
    assert error == "Connection refused"


def test_probe_target_with_a_port(listening_port: int) -> None:
    reach = probe_target(f"localhost:{listening_port}", 2, 2.0, resolver=loopback_resolver)
    assert reach.target == f"localhost:{listening_port}"
    assert reach.probed is not None and reach.probed.received == 2
    assert reach.resolved and reach.error == ""


def test_probe_target_with_a_closed_port(closed_port: int) -> None:
    reach = probe_target(f"127.0.0.1:{closed_port}", 1, 2.0, resolver=loopback_resolver)
    assert reach.probed is not None and reach.probed.received == 0
    assert reach.error == "Connection refused"


def test_probe_target_host_only_answers_by_icmp_or_tcp() -> None:
    reach = probe_target("localhost", 2, 2.0, resolver=loopback_resolver)
    assert reach.probed is not None, reach.error
    # ICMP where permitted; otherwise a TCP refusal from loopback still proves the host is up.
    assert reach.probed.method == "icmp" or reach.probed.method.startswith("tcp:")
    assert reach.probed.received == 2


def test_probe_target_on_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
            server.bind(("::1", 0))
            server.listen()
            port = server.getsockname()[1]
            reach = probe_target(f"[::1]:{port}", 1, 2.0, resolver=loopback_resolver)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert reach.probed is not None and reach.probed.received == 1
    assert reach.probed.target == "::1"


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    reach = probe_target("intranet.corp.example:443", 1, 1.0, resolver=loopback_resolver)
    assert reach.probed is None
    assert not reach.resolved
    assert reach.error == "cannot resolve intranet.corp.example: Name or service not known"


def test_a_malformed_target_is_reported_not_raised() -> None:
    reach = probe_target("host:http", 1, 1.0, resolver=loopback_resolver)
    assert reach.probed is None and reach.resolved
    assert "port" in reach.error


def test_probe_targets_keeps_the_configured_order(listening_port: int, closed_port: int) -> None:
    targets = [f"localhost:{closed_port}", f"127.0.0.1:{listening_port}", "nowhere.example"]
    found = probe_targets(targets, 1, 2.0, resolver=loopback_resolver)
    assert [reach.target for reach in found.targets] == targets
    received = [reach.probed.received if reach.probed else None for reach in found.targets]
    assert received == [0, 1, None]
    assert probe_targets([], 1, 1.0).targets == ()
