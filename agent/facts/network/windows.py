"""Windows network facts: DNS servers from PowerShell's DnsClient module, Wi-Fi from netsh."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from agent.facts.command import run_command
from agent.facts.models import Unavailable
from agent.facts.network.models import DnsServer, DnsServersFacts, WifiFacts, WifiLink

# One PowerShell start is costly (~0.3 s), so the servers and the suffix list come in one call.
DNS_SCRIPT = (
    "$s = Get-DnsClientServerAddress | "
    "Select-Object InterfaceAlias,InterfaceIndex,AddressFamily,ServerAddresses; "
    "$g = (Get-DnsClientGlobalSetting).SuffixSearchList; "
    "[pscustomobject]@{Servers=@($s); SuffixSearchList=@($g)} | ConvertTo-Json -Depth 4 -Compress"
)
DNS_ARGV = ("powershell", "-NoProfile", "-NonInteractive", "-Command", DNS_SCRIPT)
WLAN_ARGV = ("netsh", "wlan", "show", "interfaces")

# Windows lists these deprecated site-local addresses on interfaces that have no IPv6 DNS server.
_PLACEHOLDER_SERVERS = re.compile(r"^fec0:0:0:ffff::[123](%\d+)?$", re.IGNORECASE)


def _as_list(value: Any) -> list[Any]:
    """ConvertTo-Json writes a one-element array as the bare element; undo that."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_dns_client_json(text: str) -> DnsServersFacts:
    """Servers per interface from DNS_SCRIPT's JSON (or Get-DnsClientServerAddress's alone).

    Raises ValueError when the text is not that JSON.
    """
    data = json.loads(text)
    if isinstance(data, dict) and "Servers" in data:
        rows, suffixes = _as_list(data["Servers"]), _as_list(data.get("SuffixSearchList"))
    else:
        rows, suffixes = _as_list(data), []
    servers: dict[tuple[str, str], DnsServer] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"unexpected DNS client entry: {row!r}")
        alias = str(row.get("InterfaceAlias") or "")
        if alias.lower().startswith("loopback pseudo-interface"):
            continue
        for address in _as_list(row.get("ServerAddresses")):
            address = str(address)
            if address and not _PLACEHOLDER_SERVERS.match(address):
                servers.setdefault((address, alias), DnsServer(address, interface=alias))
    search = tuple(str(s) for s in suffixes if s)
    return DnsServersFacts(tuple(servers.values()), search, "Get-DnsClientServerAddress")


def dns_servers() -> DnsServersFacts | Unavailable:
    done = run_command(DNS_ARGV, timeout_s=20.0)
    if isinstance(done, Unavailable):
        return Unavailable(f"cannot list the DNS servers: {done.reason}")
    try:
        return parse_dns_client_json(done.stdout)
    except (ValueError, TypeError) as exc:
        return Unavailable(f"cannot read Get-DnsClientServerAddress output: {exc}")


# --- Wi-Fi ---------------------------------------------------------------------------------------


def _blocks(lines: Iterable[str]) -> list[dict[str, str]]:
    """The "Key : value" lines grouped into one dict per interface (each starts with "Name")."""
    blocks: list[dict[str, str]] = []
    for line in lines:
        key, colon, value = line.partition(":")
        if not colon or not line.startswith(" "):
            continue
        key = key.strip()
        if key == "Name":
            blocks.append({})
        if blocks:
            blocks[-1][key] = value.strip()
    return blocks


def _percent(text: str | None) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text or "")
    return float(match.group(1)) if match else None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def parse_netsh_wlan(text: str) -> tuple[WifiLink, ...]:
    """Each interface of `netsh wlan show interfaces` (English output).

    netsh gives signal quality in percent; per the WLAN API (WLAN_ASSOCIATION_ATTRIBUTES),
    0 % is -100 dBm and 100 % is -50 dBm, linear in between. Recent builds also print "Rssi".
    """
    links = []
    for block in _blocks(text.splitlines()):
        connected = block.get("State", "").lower() == "connected"
        quality = _percent(block.get("Signal")) if connected else None
        rssi = _float(block.get("Rssi")) if connected else None
        if rssi is None and quality is not None:
            rssi = quality / 2.0 - 100.0
        links.append(
            WifiLink(
                interface=block.get("Name", ""),
                connected=connected,
                ssid=(block.get("SSID") or None) if connected else None,
                signal_dbm=rssi,
                quality_percent=quality,
            )
        )
    return tuple(links)


def wifi() -> WifiFacts | Unavailable:
    done = run_command(WLAN_ARGV, ok_codes=(0, 1))
    if isinstance(done, Unavailable):
        return Unavailable(f"cannot read the Wi-Fi state: {done.reason}")
    links = parse_netsh_wlan(done.stdout)
    if links:
        return WifiFacts(links)
    if "wlansvc" in done.stdout.lower():
        # The WLAN AutoConfig service runs wherever a Wi-Fi adapter is in use.
        return Unavailable("no Wi-Fi interface (the WLAN AutoConfig service is not running)")
    return Unavailable("no Wi-Fi interface")
