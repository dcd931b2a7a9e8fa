"""Network facts: route parsing on recorded text, probes and lookups on loopback only."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from agent.facts import reachability
from agent.facts.models import GatewayFacts, Unavailable

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def route(iface: str, dest: str, gateway: str, flags: str, metric: int = 0) -> str:
    return f"{iface}\t{dest}\t{gateway}\t{flags}\t0\t0\t{metric}\t00000000\t0\t0\t0\n"


# Recorded from a little-endian machine whose default gateway is 192.0.2.1.
RECORDED_ROUTES = (
    HEADER
    + route("eth0", "00000000", "010200C0", "0003")
    + route("eth0", "000200C0", "00000000", "0001")
)


def test_parse_proc_net_route_finds_the_default_gateway() -> None:
    assert reachability.parse_proc_net_route(RECORDED_ROUTES, "little") == "192.0.2.1"


def test_parse_proc_net_route_on_a_big_endian_machine() -> None:
    text = HEADER + route("eth0", "00000000", "C0000201", "0003")
    assert reachability.parse_proc_net_route(text, "big") == "192.0.2.1"


def test_parse_proc_net_route_prefers_the_lowest_metric() -> None:
    text = (
        HEADER
        + route("wlan0", "00000000", "0102A8C0", "0003", metric=600)
        + route("eth0", "00000000", "FE0A000A", "0003", metric=100)
    )
    assert reachability.parse_proc_net_route(text, "little") == "10.0.10.254"


@pytest.mark.parametrize(
    "text",
    [
        HEADER,
        HEADER + route("eth0", "000200C0", "00000000", "0001"),  # no default route
        HEADER + route("tun0", "00000000", "00000000", "0001"),  # default without a gateway
        HEADER + route("eth0", "00000000", "010200C0", "0002"),  # gateway route that is down
        HEADER + "garbage\n" + route("eth0", "00000000", "zz", "0003"),
        "",
    ],
)
def test_parse_proc_net_route_without_a_usable_default(text: str) -> None:
    assert reachability.parse_proc_net_route(text, "little") is None


def test_icmp_checksum_matches_rfc_1071() -> None:
    assert reachability.icmp_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_echo_request_carries_a_valid_checksum() -> None:
    packet = reachability.echo_request(socket.AF_INET, 0x1234, 7, b"abc")
    assert packet[0] == 8 and packet[1] == 0
    assert struct.unpack("!HH", packet[4:8]) == (0x1234, 7)
    assert reachability.icmp_checksum(packet) == 0  # a packet with its checksum sums to zero


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_tcp_probe_counts_a_refused_connection_as_an_answer(closed_port: int) -> None:
    facts = reachability.tcp_probe(socket.AF_INET, "127.0.0.1", 3, 1.0, [closed_port])
    assert facts == GatewayFacts("127.0.0.1", f"tcp:{closed_port}", 3, 3, facts.rtt_ms)
    assert len(facts.rtt_ms) == 3


def test_tcp_probe_counts_an_accepted_connection_as_an_answer(listening_port: int) -> None:
    facts = reachability.tcp_probe(socket.AF_INET, "127.0.0.1", 2, 1.0, [listening_port])
    assert (facts.method, facts.received) == (f"tcp:{listening_port}", 2)


def test_tcp_answer_tries_every_port(closed_port: int, listening_port: int) -> None:
    port = reachability.tcp_answer(socket.AF_INET, "127.0.0.1", [closed_port, listening_port], 1.0)
    assert port in (closed_port, listening_port)


def test_icmp_probe_answers_on_loopback_when_permitted() -> None:
    facts = reachability.icmp_probe(socket.AF_INET, "127.0.0.1", 2, 1.0)
    if facts is None:
        pytest.skip("this machine permits neither ping sockets nor raw sockets")
    assert (facts.method, facts.sent, facts.received) == ("icmp", 2, 2)


def test_probe_reaches_loopback_by_name_or_address() -> None:
    for target in ("127.0.0.1", "localhost"):
        facts = reachability.probe(target, 1, 1.0)
        assert isinstance(facts, GatewayFacts), facts
        assert facts.received == 1


def test_probe_reaches_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    facts = reachability.probe("::1", 1, 1.0)
    assert isinstance(facts, GatewayFacts), facts
    assert (facts.target, facts.received) == ("::1", 1)


def test_resolve_localhost() -> None:
    (lookup,) = reachability.resolve(["localhost"], 2.0).lookups
    assert lookup.error is None and lookup.addresses


def test_resolve_nothing() -> None:
    assert reachability.resolve([], 2.0).lookups == ()


def test_resolve_reports_why_a_name_failed() -> None:
    def refuse(name: str) -> tuple[str, ...]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    (lookup,) = reachability.resolve(["nowhere.invalid"], 2.0, resolver=refuse).lookups
    assert (lookup.addresses, lookup.error) == ((), "Name or service not known")


def test_resolve_gives_up_on_a_stuck_lookup() -> None:
    release = threading.Event()

    def stuck(name: str) -> tuple[str, ...]:
        release.wait(10.0)
        return ("192.0.2.1",)

    try:
        facts = reachability.resolve(["slow.example", "localhost"], 0.2, resolver=stuck)
    finally:
        release.set()
    assert [lookup.error for lookup in facts.lookups] == ["timed out after 0.2s"] * 2


def test_probe_of_an_unresolvable_target_is_unavailable() -> None:
    # A 64-character label fails Python's IDNA encoding, before any query leaves the machine.
    target = "a" * 64 + ".invalid"
    facts = reachability.probe(target, 1, 1.0)
    assert isinstance(facts, Unavailable)
    assert facts.reason.startswith(f"cannot resolve {target}: ")
