"""macOS network facts: DNS servers from `scutil --dns`, Wi-Fi from system_profiler's JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiFacts, WifiLink

SCUTIL_DNS_ARGV = ("scutil", "--dns")
AIRPORT_ARGV = ("system_profiler", "SPAirPortDataType", "-json")

_INDEXED = re.compile(r"^(?P<key>[a-z ]+?)\[\d+\]$")
_IF_INDEX = re.compile(r"^\d+\s+\((?P<name>[^)]+)\)$")


def parse_scutil_dns(text: str) -> DnsServersFacts:
    """The resolvers of `scutil --dns`'s main section (the scoped copies after it repeat them).

    A resolver with a "domain" line only answers for that domain (split DNS, e.g. a VPN);
    one without serves every name. Resolvers without a nameserver (mDNS "local") are skipped.
    """
    resolvers: list[dict[str, Any]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("DNS configuration (for scoped queries)"):
            break
        if stripped.startswith("resolver #"):
            resolvers.append({"nameserver": [], "search domain": []})
            continue
        key, colon, value = stripped.partition(" : ")
        if not colon or not resolvers:
            continue
        key, value = key.strip(), value.strip()
        indexed = _INDEXED.match(key)
        if indexed:
            resolvers[-1].setdefault(indexed.group("key"), []).append(value)
        else:
            resolvers[-1][key] = value
    servers: dict[tuple[str, str], DnsServer] = {}
    search: list[str] = []
    for resolver in resolvers:
        domain = str(resolver.get("domain", ""))
        if_index = _IF_INDEX.match(str(resolver.get("if_index", "")))
        interface = if_index.group("name") if if_index else ""
        for address in resolver["nameserver"]:
            servers.setdefault((address, domain), DnsServer(address, interface, domain))
        if not domain:
            search.extend(s for s in resolver["search domain"] if s not in search)
    return DnsServersFacts(tuple(servers.values()), tuple(search), "scutil --dns")


def dns_servers() -> DnsServersFacts | Unavailable:
    done = run_command(SCUTIL_DNS_ARGV)
    if isinstance(done, Unavailable):
        return Unavailable(f"cannot list the DNS servers: {done.reason}")
    return parse_scutil_dns(done.stdout)


# --- Wi-Fi ---------------------------------------------------------------------------------------

_SIGNAL_NOISE = re.compile(r"(-?\d+)\s*dBm\s*/\s*(-?\d+)\s*dBm")
# AirDrop's and the low-latency link's virtual interfaces are listed too; they are not Wi-Fi
# the user connects to.
_VIRTUAL = ("awdl", "llw")


def parse_airport_json(text: str) -> tuple[WifiLink, ...]:
    """Each Wi-Fi interface of `system_profiler SPAirPortDataType -json`.

    The connected network's "spairport_signal_noise" reads "-55 dBm / -92 dBm". Since macOS
    14.4 the SSID reads "<redacted>" unless the agent has location permission.
    Raises ValueError when the text is not that JSON.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a system_profiler document")
    links: list[WifiLink] = []
    for section in data.get("SPAirPortDataType") or ():
        for iface in section.get("spairport_airport_interfaces") or ():
            name = str(iface.get("_name", ""))
            if not name or name.startswith(_VIRTUAL):
                continue
            status = str(iface.get("spairport_status_information", ""))
            network = iface.get("spairport_current_network_information")
            connected = status == "spairport_status_connected" and isinstance(network, dict)
            if not connected or not isinstance(network, dict):
                links.append(WifiLink(name, connected=False))
                continue
            match = _SIGNAL_NOISE.search(str(network.get("spairport_signal_noise", "")))
            ssid = str(network.get("_name", ""))
            links.append(
                WifiLink(
                    name,
                    connected=True,
                    ssid=ssid if ssid and ssid != "<redacted>" else None,
                    signal_dbm=float(match.group(1)) if match else None,
                    noise_dbm=float(match.group(2)) if match else None,
                )
            )
    return tuple(links)


def wifi() -> WifiFacts | Unavailable:
    done = run_command(AIRPORT_ARGV, timeout_s=30.0)
    if isinstance(done, Unavailable):
        return Unavailable(f"cannot read the Wi-Fi state: {done.reason}")
    try:
        links = parse_airport_json(done.stdout)
    except (ValueError, TypeError, AttributeError) as exc:
        return Unavailable(f"cannot read system_profiler output: {exc}")
    return WifiFacts(links) if links else Unavailable("no Wi-Fi interface")
