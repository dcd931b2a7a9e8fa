"""Windows network facts: DnsClient JSON and `netsh wlan show interfaces` parsed from recordings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.network import windows
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiLink

FIXTURES = Path(__file__).parents[3] / "fixtures" / "network"


def fixture(name: str) -> str:
    # As run_command hands it over: bytes decoded, Windows line ends kept.
    return (FIXTURES / name).read_bytes().decode("utf-8")


def test_parse_dns_client_json_skips_loopback_and_ipv6_placeholders() -> None:
    found = windows.parse_dns_client_json(fixture("dns_client_server_address.json"))
    assert found == DnsServersFacts(
        (
            DnsServer("10.20.0.10", interface="Ethernet"),
            DnsServer("10.20.0.11", interface="Ethernet"),
            DnsServer("10.20.0.10", interface="Ethernet 2"),
        ),
        ("corp.example.com", "example.com"),
        "Get-DnsClientServerAddress",
    )


def test_parse_dns_client_json_with_one_interface_and_no_suffixes() -> None:
    # ConvertTo-Json writes a one-element array as the bare object, and @($null) as [null].
    found = windows.parse_dns_client_json(fixture("dns_client_server_address_single.json"))
    assert found.servers == (DnsServer("192.168.178.1", interface="Wi-Fi"),)
    assert found.search_domains == ()


def test_parse_dns_client_json_of_the_cmdlet_alone() -> None:
    text = '[{"InterfaceAlias": "Ethernet", "AddressFamily": 2, "ServerAddresses": "10.0.0.1"}]'
    found = windows.parse_dns_client_json(text)
    assert found.servers == (DnsServer("10.0.0.1", interface="Ethernet"),)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_parse_dns_client_json_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        windows.parse_dns_client_json(text)


def test_parse_netsh_wlan_connected() -> None:
    (link,) = windows.parse_netsh_wlan(fixture("netsh_wlan_connected.txt"))
    # 84 % on the WLAN API's scale (0 % = -100 dBm, 100 % = -50 dBm) is -58 dBm.
    assert link == WifiLink("Wi-Fi", True, "CorpNet", signal_dbm=-58.0, quality_percent=84.0)


def test_parse_netsh_wlan_prefers_the_rssi_line_of_recent_builds() -> None:
    (link,) = windows.parse_netsh_wlan(fixture("netsh_wlan_windows11_weak.txt"))
    assert link == WifiLink("Wi-Fi", True, "Guest-WiFi", signal_dbm=-84.0, quality_percent=30.0)


def test_parse_netsh_wlan_disconnected() -> None:
    (link,) = windows.parse_netsh_wlan(fixture("netsh_wlan_disconnected.txt"))
    assert link == WifiLink("Wi-Fi", connected=False)


@pytest.mark.parametrize("name", ["netsh_wlan_none.txt", "netsh_wlan_service_stopped.txt"])
def test_parse_netsh_wlan_without_an_interface(name: str) -> None:
    assert windows.parse_netsh_wlan(fixture(name)) == ()


def test_parse_netsh_wlan_with_two_adapters() -> None:
    text = fixture("netsh_wlan_connected.txt").replace(
        "There is 1 interface", "There are 2 interfaces"
    ) + fixture("netsh_wlan_disconnected.txt").replace(
        "Name                   : Wi-Fi", "Name : Wi-Fi 2"
    )
    links = windows.parse_netsh_wlan(text)
    assert [(link.interface, link.connected) for link in links] == [
        ("Wi-Fi", True),
        ("Wi-Fi 2", False),
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="the tools exist there")
def test_gatherers_off_windows_say_the_tool_is_missing() -> None:
    for found in (windows.dns_servers(), windows.wifi()):
        assert isinstance(found, Unavailable)
        assert "is not installed" in found.reason
