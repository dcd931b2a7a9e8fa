"""LiveNetwork on this very machine: real files, psutil, and traffic to loopback only."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterator

import psutil
import pytest

from agent.facts.live import LiveFacts
from agent.facts.models import InterfacesFacts, Unavailable
from agent.facts.network.models import (
    DnsServersFacts,
    InterfaceSampleFacts,
    ListenersFacts,
    WifiFacts,
)


@pytest.fixture
def live() -> LiveFacts:
    return LiveFacts()


def test_dns_servers(live: LiveFacts) -> None:
    found = live.dns_servers()
    assert isinstance(found, DnsServersFacts | Unavailable)
    if isinstance(found, Unavailable):
        assert found.reason
        return
    assert found.source
    for server in found.servers:
        ipaddress.ip_address(server.address.split("%", 1)[0])


def test_wifi_is_read_or_absent_with_a_reason(live: LiveFacts) -> None:
    found = live.wifi()
    if isinstance(found, Unavailable):
        assert found.reason  # this container has no Wi-Fi: "no Wi-Fi interface"
        return
    assert isinstance(found, WifiFacts) and found.links


def test_listeners_include_a_socket_of_ours(live: LiveFacts) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("0.0.0.0", 0))  # every interface, but nobody outside connects
        server.listen()
        port = server.getsockname()[1]
        found = live.listeners()
    if isinstance(found, Unavailable):
        pytest.skip(found.reason)
    assert isinstance(found, ListenersFacts)
    ours = [ln for ln in found.listeners if ln.port == port and ln.protocol == "tcp"]
    assert [(ln.scope, ln.process) for ln in ours] == [("all", psutil.Process().name())]


def test_interface_sample_carries_the_previous_one(live: LiveFacts) -> None:
    first = live.interface_sample()
    assert isinstance(first, InterfaceSampleFacts)
    assert first.previous is None and first.elapsed_seconds is None
    names = {iface.name for iface in first.current.interfaces}
    assert names == set(psutil.net_if_stats()) | set(psutil.net_if_addrs())
    time.sleep(0.01)
    second = live.interface_sample()
    assert isinstance(second, InterfaceSampleFacts)
    assert second.previous == first.current
    assert second.elapsed_seconds is not None and second.elapsed_seconds > 0
    # Counters only grow.
    before = {iface.name: iface for iface in first.current.interfaces}
    for iface in second.current.interfaces:
        if iface.name in before:
            assert iface.errors_in >= before[iface.name].errors_in
            assert iface.bytes_recv >= before[iface.name].bytes_recv


def test_interface_samples_are_per_source() -> None:
    one, two = LiveFacts(), LiveFacts()
    assert isinstance(one.interface_sample(), InterfaceSampleFacts)
    found = two.interface_sample()
    assert isinstance(found, InterfaceSampleFacts) and found.previous is None


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_target_reachability_on_loopback(live: LiveFacts, listening_port: int) -> None:
    targets = ["127.0.0.1", f"localhost:{listening_port}"]
    found = live.target_reachability(targets, 1, 2.0)
    assert not isinstance(found, Unavailable)
    assert [reach.target for reach in found.targets] == targets
    for reach in found.targets:
        assert reach.probed is not None and reach.probed.received == 1, reach.error


def test_network_inventory_is_json_and_bounded(live: LiveFacts) -> None:
    inventory = live.network_inventory()
    assert set(inventory) == {"dns_servers", "wifi", "listeners"}
    json.dumps(inventory)
    listeners = inventory["listeners"]
    if "unavailable" not in listeners:
        assert len(listeners["listening"]) <= 64
        assert all("pid" not in row for row in listeners["listening"])
    wifi = inventory["wifi"]
    assert "unavailable" in wifi or all("signal_dbm" not in link for link in wifi["interfaces"])


def test_interfaces_unavailable_passes_through() -> None:
    class NoInterfaces(LiveFacts):
        def interfaces(self) -> InterfacesFacts | Unavailable:
            return Unavailable("cannot list network interfaces: denied")

    assert NoInterfaces().interface_sample() == Unavailable(
        "cannot list network interfaces: denied"
    )
