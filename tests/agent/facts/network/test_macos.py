"""macOS network facts: `scutil --dns` and system_profiler's Wi-Fi JSON parsed from recordings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.network import macos
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiLink

FIXTURES = Path(__file__).parents[3] / "fixtures" / "network"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_parse_scutil_dns_reads_the_main_section_only() -> None:
    found = macos.parse_scutil_dns(fixture("scutil_dns.txt"))
    assert found == DnsServersFacts(
        (
            DnsServer("192.168.1.1", "en0"),
            DnsServer("2001:db8::53", "en0"),
            # The VPN's server answers only for its own domain.
            DnsServer("10.8.0.53", "utun4", "intranet.corp.example.com"),
        ),
        ("corp.example.com", "example.com"),
        "scutil --dns",
    )


@pytest.mark.parametrize("text", ["", "DNS configuration\n\nNo DNS configuration available\n"])
def test_parse_scutil_dns_without_resolvers(text: str) -> None:
    assert macos.parse_scutil_dns(text).servers == ()


def test_parse_airport_json_connected_skips_virtual_interfaces() -> None:
    (link,) = macos.parse_airport_json(fixture("system_profiler_airport_connected.json"))
    assert link == WifiLink("en0", True, "CorpNet", signal_dbm=-58.0, noise_dbm=-94.0)


def test_parse_airport_json_with_the_ssid_redacted() -> None:
    (link,) = macos.parse_airport_json(fixture("system_profiler_airport_redacted.json"))
    assert link == WifiLink("en0", True, None, signal_dbm=-82.0, noise_dbm=-90.0)


def test_parse_airport_json_with_wifi_off() -> None:
    (link,) = macos.parse_airport_json(fixture("system_profiler_airport_off.json"))
    assert link == WifiLink("en1", connected=False)


def test_parse_airport_json_without_wifi_hardware() -> None:
    assert macos.parse_airport_json(fixture("system_profiler_airport_none.json")) == ()
    assert macos.parse_airport_json('{"SPAirPortDataType": []}') == ()


@pytest.mark.parametrize("text", ["", "[]", "not json"])
def test_parse_airport_json_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        macos.parse_airport_json(text)


@pytest.mark.skipif(sys.platform == "darwin", reason="the tools exist there")
def test_gatherers_off_macos_say_the_tool_is_missing() -> None:
    for found in (macos.dns_servers(), macos.wifi()):
        assert isinstance(found, Unavailable)
        assert "is not installed" in found.reason
