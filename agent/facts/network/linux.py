"""Linux network facts: DNS servers from resolv.conf, Wi-Fi signal from /proc/net/wireless."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent.facts.command import read_text
from agent.facts.models import Unavailable
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiFacts, WifiLink

RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
"""systemd-resolved writes the servers it forwards to here; resolv.conf then names its stub."""
STUB_ADDRESSES = frozenset({"127.0.0.53", "127.0.0.54"})
"""systemd-resolved's stub listener and its proxy-only variant."""
PROC_NET_WIRELESS = "/proc/net/wireless"
SYS_CLASS_NET = "/sys/class/net"

# --- DNS servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...]
    search: tuple[str, ...]


def parse_resolv_conf(text: str) -> ResolvConf:
    """The nameserver and search lines of a resolv.conf (resolv.conf(5)).

    As in glibc, the last "search" or "domain" line wins, and comments start with # or ;.
    """
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0][0] in "#;":
            continue
        keyword, args = fields[0], fields[1:]
        if keyword == "nameserver" and args and args[0] not in nameservers:
            nameservers.append(args[0])
        elif keyword in ("search", "domain"):
            search = tuple(arg for arg in args if arg[0] not in "#;")
    return ResolvConf(tuple(nameservers), search)


def dns_servers(
    resolv_conf: str = RESOLV_CONF, resolved_upstream: str = RESOLVED_UPSTREAM
) -> DnsServersFacts | Unavailable:
    """The servers resolv.conf names; behind systemd-resolved's stub, the ones it forwards to."""
    text = read_text(resolv_conf)
    if isinstance(text, Unavailable):
        return Unavailable(f"cannot read the DNS configuration: {text.reason}")
    conf = parse_resolv_conf(text)
    stubs = [server for server in conf.nameservers if server in STUB_ADDRESSES]
    if not stubs or len(stubs) != len(conf.nameservers):
        return DnsServersFacts(_servers(conf.nameservers), conf.search, resolv_conf)
    upstream_text = read_text(resolved_upstream)
    if isinstance(upstream_text, Unavailable):
        # The stub is all we can name; the servers behind it stay unknown to us.
        return DnsServersFacts(_servers(conf.nameservers), conf.search, resolv_conf)
    upstream = parse_resolv_conf(upstream_text)
    return DnsServersFacts(
        _servers(upstream.nameservers),
        upstream.search or conf.search,
        resolved_upstream,
        local_stub=stubs[0],
    )


def _servers(addresses: tuple[str, ...]) -> tuple[DnsServer, ...]:
    return tuple(DnsServer(address) for address in addresses)


# --- Wi-Fi ---------------------------------------------------------------------------------------

LINK_QUALITY_MAX = 70.0
"""mac80211 drivers report link quality as signal + 110 dBm clipped to 0..70 (iwconfig's "/70")."""


def _number(text: str) -> float | None:
    try:
        return float(text.rstrip("."))
    except ValueError:
        return None


def _dbm(value: float | None) -> float | None:
    """A level as dBm. Old drivers print it as an unsigned byte (200 is -56 dBm); 0 is unknown."""
    if value is None or value == 0 or value <= -256:
        return None
    if value > 0:
        return value - 256 if value >= 64 else None
    return value


def parse_proc_net_wireless(text: str) -> tuple[WifiLink, ...]:
    """Each interface line of /proc/net/wireless (the Wireless Extensions status table).

    The kernel prints "wlan0: 0000   54.  -56.  -256 ...": status, link quality, signal level
    and noise level, with a trailing dot when the value was updated since the last read.
    An interface that is not associated shows zeros.
    """
    links: list[WifiLink] = []
    for line in text.splitlines()[2:]:
        name, colon, rest = line.partition(":")
        fields = rest.split()
        if not colon or len(fields) < 4:
            continue
        quality = _number(fields[1])
        signal = _dbm(_number(fields[2]))
        noise = _dbm(_number(fields[3]))
        connected = bool(quality) or signal is not None
        links.append(
            WifiLink(
                interface=name.strip(),
                connected=connected,
                signal_dbm=signal if connected else None,
                noise_dbm=noise if connected else None,
                quality_percent=(
                    round(min(100.0, 100.0 * quality / LINK_QUALITY_MAX), 1)
                    if connected and quality is not None
                    else None
                ),
            )
        )
    return tuple(links)


def wireless_interfaces(sys_class_net: str = SYS_CLASS_NET) -> tuple[str, ...]:
    """Interfaces the kernel knows as wireless (they have a `wireless` or `phy80211` entry)."""
    try:
        names = sorted(os.listdir(sys_class_net))
    except OSError:
        return ()
    return tuple(
        name
        for name in names
        if os.path.exists(os.path.join(sys_class_net, name, "wireless"))
        or os.path.exists(os.path.join(sys_class_net, name, "phy80211"))
    )


def wifi(
    proc_net_wireless: str = PROC_NET_WIRELESS, sys_class_net: str = SYS_CLASS_NET
) -> WifiFacts | Unavailable:
    """Signal of every Wi-Fi interface; the file is absent when the machine has no Wi-Fi."""
    text = read_text(proc_net_wireless)
    links = () if isinstance(text, Unavailable) else parse_proc_net_wireless(text)
    if links:
        return WifiFacts(tuple(_with_operstate(link, sys_class_net) for link in links))
    present = wireless_interfaces(sys_class_net)
    if present:
        # A kernel built without the Wireless Extensions compat layer has Wi-Fi but no table.
        why = text.reason if isinstance(text, Unavailable) else f"{proc_net_wireless} is empty"
        return Unavailable(
            f"Wi-Fi interface {present[0]} found but its signal is unreadable: {why}"
        )
    return Unavailable("no Wi-Fi interface")


def _with_operstate(link: WifiLink, sys_class_net: str) -> WifiLink:
    """The link as not connected when the kernel says it is down, whatever the table says."""
    state = read_text(os.path.join(sys_class_net, link.interface, "operstate"), limit=64)
    if isinstance(state, Unavailable) or state.strip() not in ("down", "dormant"):
        return link
    return WifiLink(link.interface, connected=False)
