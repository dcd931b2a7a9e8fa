"""network.unexpected_listener: flags services that accept connections from the whole network."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.network.listeners import EPHEMERAL_UDP_FROM
from agent.facts.network.models import Listener, ListenersFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

_PORT_RULE = re.compile(r"^(?:(tcp|udp)/)?(\d{1,5})$")
MAX_LISTED = 10


def _port_text(value: Any) -> Any:
    # Policies written by hand say 8080 as often as "tcp/8080".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _valid_port_rule(text: str) -> str:
    match = _PORT_RULE.match(text.strip().lower())
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(
            f"{text!r}: expected a port (1-65535), optionally as tcp/<port> or udp/<port>"
        )
    protocol, port = match.groups()
    return f"{protocol}/{int(port)}" if protocol else str(int(port))


PortRule = Annotated[str, BeforeValidator(_port_text), AfterValidator(_valid_port_rule)]
"""A port on both protocols ("8080" or 8080), or on one ("tcp/8080", "udp/5353")."""
ProcessName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]

# What stock desktop systems open to the LAN by themselves: DHCP clients, NetBIOS name and
# datagram services, SSDP, WS-Discovery, mDNS and LLMNR. All UDP; no TCP service is expected.
DEFAULT_ALLOWED_PORTS: tuple[str, ...] = (
    "udp/68",
    "udp/137",
    "udp/138",
    "udp/546",
    "udp/1900",
    "udp/3702",
    "udp/5353",
    "udp/5355",
)
# Remote control of the PC from anywhere on the network: telnet, RDP, VNC.
DEFAULT_CRITICAL_PORTS: tuple[str, ...] = ("tcp/23", "tcp/3389", "tcp/5900", "tcp/5901")


class UnexpectedListenerThresholds(Thresholds):
    allowed_ports: tuple[PortRule, ...] = Field(default=DEFAULT_ALLOWED_PORTS, max_length=256)
    """Ports that may listen on all interfaces. The default allows only the discovery and DHCP
    traffic every desktop OS answers; add e.g. "tcp/445" where Windows file sharing is wanted."""
    allowed_processes: tuple[ProcessName, ...] = Field(default=(), max_length=64)
    """Programs (by process name, any case, e.g. "sshd", "svchost.exe") allowed to listen on
    all interfaces on any port. A listener whose process the OS hides is never allowed by name."""
    critical_ports: tuple[PortRule, ...] = Field(default=DEFAULT_CRITICAL_PORTS, max_length=64)
    """Unexpected listeners on these ports are critical, not a warning (remote control)."""
    ignored_udp_ports_from: int | None = Field(default=EPHEMERAL_UDP_FROM, ge=1024, le=65535)
    """UDP sockets bound at or above this port are clients waiting for replies, not services;
    None judges every UDP port."""


class UnexpectedListener(Check[ListenersFacts, UnexpectedListenerThresholds]):
    id = "network.unexpected_listener"
    title = "Unexpected open ports"
    category = Category.NETWORK
    default_interval = timedelta(minutes=15)
    remediation = (
        "A program on this PC accepts connections from the whole network. If nobody knows why, "
        "pass it to the security team: it may be an unwanted remote-access tool or a server left "
        "running. If it is needed, allow its port or program in this check's policy, or "
        "configure the program to listen only on 127.0.0.1."
    )
    emits = (
        ValueSpec("listeners", "count", "listening TCP and bound UDP sockets judged"),
        ValueSpec("listening_on_all_interfaces", "count", "of those, listening on every interface"),
        ValueSpec("unexpected_ports", "count", "ports on all interfaces that are not allowed"),
        ValueSpec("unexpected", "", 'the unexpected ports, e.g. "tcp/8080 (python3)"'),
    )
    thresholds_type = UnexpectedListenerThresholds

    def gather(
        self, source: FactSource, thresholds: UnexpectedListenerThresholds
    ) -> ListenersFacts | Unavailable:
        return source.listeners()

    def evaluate(self, facts: ListenersFacts, thresholds: UnexpectedListenerThresholds) -> Outcome:
        t = thresholds
        judged = [ln for ln in facts.listeners if not _ignored(ln, t)]
        everywhere = [ln for ln in judged if ln.scope == "all"]
        allowed_names = {name.lower() for name in t.allowed_processes}
        unexpected: dict[tuple[str, int], set[str]] = {}
        for ln in everywhere:
            if _matches(ln.protocol, ln.port, t.allowed_ports) or (
                ln.process and ln.process.lower() in allowed_names
            ):
                continue
            unexpected.setdefault((ln.protocol, ln.port), set()).add(ln.process)
        listed = [
            f"{protocol}/{port} ({', '.join(sorted(n or 'process unknown' for n in names))})"
            for (protocol, port), names in sorted(unexpected.items(), key=lambda kv: kv[0][1])
        ]
        values = [
            Measured("listeners", len(judged), "count"),
            Measured("listening_on_all_interfaces", len(everywhere), "count"),
            Measured("unexpected_ports", len(unexpected), "count"),
        ]
        if not unexpected:
            summary = (
                f"no unexpected port: {len(everywhere)} of {len(judged)} listeners on all "
                "interfaces, all allowed"
            )
            return Outcome(CheckStatus.OK, summary, tuple(values))
        values.append(Measured("unexpected", ", ".join(listed), ""))
        critical = any(_matches(protocol, port, t.critical_ports) for protocol, port in unexpected)
        shown = "; ".join(listed[:MAX_LISTED])
        if len(listed) > MAX_LISTED:
            shown += f"; and {len(listed) - MAX_LISTED} more"
        status = CheckStatus.CRITICAL if critical else CheckStatus.WARNING
        plural = "s" if len(listed) > 1 else ""
        summary = f"{len(listed)} unexpected port{plural} open on all interfaces: {shown}"
        if critical:
            summary += " (critical: remote control port)"
        return Outcome(status, summary, tuple(values))


def _ignored(ln: Listener, t: UnexpectedListenerThresholds) -> bool:
    return (
        ln.protocol == "udp"
        and t.ignored_udp_ports_from is not None
        and ln.port >= t.ignored_udp_ports_from
    )


def _matches(protocol: str, port: int, rules: tuple[str, ...]) -> bool:
    return str(port) in rules or f"{protocol}/{port}" in rules
