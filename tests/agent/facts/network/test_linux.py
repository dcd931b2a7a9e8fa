"""Linux network facts: resolv.conf and /proc/net/wireless parsers on recorded files, then live."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.network import linux
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiFacts, WifiLink

FIXTURES = Path(__file__).parents[3] / "fixtures" / "network"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --- resolv.conf ---------------------------------------------------------------------------------


def test_parse_resolv_conf_keeps_servers_in_order_once() -> None:
    conf = linux.parse_resolv_conf(fixture("resolv.conf"))
    assert conf.nameservers == ("192.0.2.53", "2001:db8::53")
    assert conf.search == ("corp.example.com", "example.com")


def test_parse_resolv_conf_last_search_or_domain_line_wins() -> None:
    text = "search a.example\nnameserver 192.0.2.1 # trailing\ndomain b.example\n"
    conf = linux.parse_resolv_conf(text)
    assert conf == linux.ResolvConf(("192.0.2.1",), ("b.example",))


@pytest.mark.parametrize("text", ["", "# only a comment\n", "nameserver\n", "options rotate\n"])
def test_parse_resolv_conf_without_servers(text: str) -> None:
    assert linux.parse_resolv_conf(text).nameservers == ()


def test_dns_servers_from_a_plain_resolv_conf() -> None:
    found = linux.dns_servers(str(FIXTURES / "resolv.conf"), "/nonexistent/resolv.conf")
    assert found == DnsServersFacts(
        (DnsServer("192.0.2.53"), DnsServer("2001:db8::53")),
        ("corp.example.com", "example.com"),
        str(FIXTURES / "resolv.conf"),
    )


def test_dns_servers_behind_the_systemd_resolved_stub_are_the_upstream_ones() -> None:
    upstream = str(FIXTURES / "resolv_systemd_upstream.conf")
    found = linux.dns_servers(str(FIXTURES / "resolv_systemd_stub.conf"), upstream)
    assert isinstance(found, DnsServersFacts)
    assert found.servers == (DnsServer("192.168.1.1"), DnsServer("fd00:1::1"))
    assert found.local_stub == "127.0.0.53"
    assert found.source == upstream
    assert found.search_domains == ("corp.example.com",)


def test_dns_servers_behind_the_stub_without_its_upstream_file_name_the_stub() -> None:
    stub = str(FIXTURES / "resolv_systemd_stub.conf")
    found = linux.dns_servers(stub, "/nonexistent/resolv.conf")
    assert isinstance(found, DnsServersFacts)
    assert found.servers == (DnsServer("127.0.0.53"),)
    assert found.local_stub is None
    assert found.source == stub


def test_dns_servers_without_a_resolv_conf_is_unavailable(tmp_path: Path) -> None:
    found = linux.dns_servers(str(tmp_path / "resolv.conf"))
    assert isinstance(found, Unavailable)
    assert (
        found.reason == f"cannot read the DNS configuration: {tmp_path}/resolv.conf does not exist"
    )


# --- /proc/net/wireless --------------------------------------------------------------------------


def test_parse_proc_net_wireless_connected() -> None:
    (link,) = linux.parse_proc_net_wireless(fixture("proc_net_wireless_connected.txt"))
    # Noise -256 means the driver does not measure it.
    assert link == WifiLink("wlp2s0", True, signal_dbm=-56.0, quality_percent=77.1)


def test_parse_proc_net_wireless_weak() -> None:
    (link,) = linux.parse_proc_net_wireless(fixture("proc_net_wireless_weak.txt"))
    assert link == WifiLink("wlan0", True, signal_dbm=-83.0, noise_dbm=-95.0, quality_percent=38.6)


def test_parse_proc_net_wireless_not_associated() -> None:
    (link,) = linux.parse_proc_net_wireless(fixture("proc_net_wireless_disconnected.txt"))
    assert link == WifiLink("wlan0", connected=False)


def test_parse_proc_net_wireless_old_driver_prints_levels_unsigned() -> None:
    header = fixture("proc_net_wireless_empty.txt")
    line = "  eth1: 0000   60.  200.  161.        0      0      0      0      0        0\n"
    (link,) = linux.parse_proc_net_wireless(header + line)
    assert (link.signal_dbm, link.noise_dbm) == (-56.0, -95.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n",
        "a\nb\nwlan0 without colon 1 2 3 4\n",
        fixture("proc_net_wireless_empty.txt"),
    ],
)
def test_parse_proc_net_wireless_without_interfaces(text: str) -> None:
    assert linux.parse_proc_net_wireless(text) == ()


def sys_class_net(root: Path, *wireless: str, wired: tuple[str, ...] = ("eth0",)) -> Path:
    """A recorded /sys/class/net with the given interfaces, each operationally up."""
    for name in (*wireless, *wired):
        (root / name).mkdir(parents=True)
        (root / name / "operstate").write_text("up\n")
    for name in wireless:
        (root / name / "wireless").mkdir()
    return root


def test_wifi_reads_the_table(tmp_path: Path) -> None:
    net = sys_class_net(tmp_path / "net", "wlp2s0")
    found = linux.wifi(str(FIXTURES / "proc_net_wireless_connected.txt"), str(net))
    assert found == WifiFacts((WifiLink("wlp2s0", True, signal_dbm=-56.0, quality_percent=77.1),))


def test_wifi_trusts_a_down_operstate_over_stale_table_values(tmp_path: Path) -> None:
    net = sys_class_net(tmp_path / "net", "wlp2s0")
    (net / "wlp2s0" / "operstate").write_text("dormant\n")
    found = linux.wifi(str(FIXTURES / "proc_net_wireless_connected.txt"), str(net))
    assert found == WifiFacts((WifiLink("wlp2s0", connected=False),))


def test_wifi_on_a_wired_machine_is_unavailable(tmp_path: Path) -> None:
    net = sys_class_net(tmp_path / "net")
    assert linux.wifi(str(tmp_path / "wireless"), str(net)) == Unavailable("no Wi-Fi interface")
    empty = str(FIXTURES / "proc_net_wireless_empty.txt")
    assert linux.wifi(empty, str(net)) == Unavailable("no Wi-Fi interface")


def test_wifi_interface_without_the_table_says_the_signal_is_unreadable(tmp_path: Path) -> None:
    net = sys_class_net(tmp_path / "net", "wlan0")
    found = linux.wifi(str(tmp_path / "wireless"), str(net))
    assert found == Unavailable(
        f"Wi-Fi interface wlan0 found but its signal is unreadable: "
        f"{tmp_path}/wireless does not exist"
    )


# --- this machine --------------------------------------------------------------------------------


def test_dns_servers_here_match_resolv_conf() -> None:
    found = linux.dns_servers()
    if isinstance(found, Unavailable):
        assert found.reason
        return
    for server in found.servers:
        ipaddress.ip_address(server.address.split("%", 1)[0])
    if found.local_stub is None:
        # Cross-check against the file itself, read here without the parser's help.
        with open(linux.RESOLV_CONF, encoding="utf-8") as conf:
            listed = [
                line.split()[1]
                for line in conf
                if line.startswith("nameserver") and len(line.split()) > 1
            ]
        assert [s.address for s in found.servers] == list(dict.fromkeys(listed))


def test_wifi_here_is_plausible_or_says_why_not() -> None:
    found = linux.wifi()
    if isinstance(found, Unavailable):
        assert found.reason
        if not Path(linux.PROC_NET_WIRELESS).exists() and not linux.wireless_interfaces():
            assert found.reason == "no Wi-Fi interface"
        return
    assert found.links
    for link in found.links:
        assert link.interface
        assert link.signal_dbm is None or -120 <= link.signal_dbm < 0
        assert link.quality_percent is None or 0 <= link.quality_percent <= 100
