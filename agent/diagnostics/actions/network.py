"""Read-only network diagnostics: ping, TCP latency, DNS, the path, HTTP(S), interfaces and routes.

Each sends only the traffic its arguments name; host names go through the system resolver
(what applications on this PC see), addresses are used as given.
"""

from __future__ import annotations

import socket
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from agent.diagnostics.base import (
    Action,
    ActionFailed,
    Arguments,
    Host,
    IpAddress,
    NoArguments,
    Port,
    Progress,
    check_host,
    facts_or_unknown,
    jsonable,
    unknown,
)
from agent.diagnostics.model import ActionContext
from agent.facts import reachability
from agent.facts.models import Unavailable
from agent.facts.network import http_probe, routes, traceroute
from agent.facts.network.targets import tcp_connect_probe


def resolve(host: str, timeout_s: float) -> str:
    """The first address of `host`; ActionFailed when it does not resolve."""
    lookup = reachability.resolve([host], timeout_s).lookups[0]
    if lookup.error is not None or not lookup.addresses:
        raise ActionFailed(f"cannot resolve {host}: {lookup.error or 'no address'}")
    return lookup.addresses[0]


def rtt_summary(rtts: tuple[float, ...], sent: int) -> dict[str, Any]:
    return {
        "sent": sent,
        "received": len(rtts),
        "loss_percent": round(100.0 * (sent - len(rtts)) / sent, 1) if sent else 100.0,
        "rtt_ms": [round(r, 3) for r in rtts],
        "min_ms": round(min(rtts), 3) if rtts else None,
        "avg_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
        "max_ms": round(max(rtts), 3) if rtts else None,
    }


class PingArgs(Arguments):
    host: Host = Field(description="Host name or IP address")
    count: int = Field(4, ge=1, le=20, description="Probes to send")
    timeout_seconds: float = Field(1.0, ge=0.1, le=5, description="Wait for each probe")
    tcp_port: Port = Field(443, description="Port for TCP latency when ICMP is not permitted")


class Ping(Action[PingArgs]):
    name = "ping"
    summary = "Round-trip time and loss to a host: ICMP echo where permitted, else TCP connect."
    arguments = PingArgs
    timeout_seconds = 120.0

    def run(self, args: PingArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        address = resolve(args.host, args.timeout_seconds * 2)
        found = reachability.probe(address, args.count, args.timeout_seconds, (args.tcp_port,))
        if isinstance(found, Unavailable):
            raise ActionFailed(found.reason)
        method = found.method
        note = (
            "ICMP echo"
            if method == "icmp"
            else f"ICMP is not permitted here: TCP connect latency to port {args.tcp_port} "
            "(a refused connection counts as an answer)"
        )
        return {"host": args.host, "address": address, "method": method, "note": note} | (
            rtt_summary(found.rtt_ms, found.sent)
        )


class TcpConnectArgs(Arguments):
    host: Host = Field(description="Host name or IP address")
    port: Port = Field(description="TCP port")
    count: int = Field(3, ge=1, le=20, description="Connections to time")
    timeout_seconds: float = Field(3.0, ge=0.1, le=10, description="Wait for each connection")


class TcpConnect(Action[TcpConnectArgs]):
    name = "tcp_connect"
    summary = "Whether a TCP port accepts connections, and how fast."
    arguments = TcpConnectArgs
    timeout_seconds = 240.0

    def run(self, args: TcpConnectArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        address = resolve(args.host, args.timeout_seconds)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            found, last_error = tcp_connect_probe(
                family, address, args.port, args.count, args.timeout_seconds
            )
        except OSError as exc:
            raise ActionFailed(f"cannot connect from this machine: {exc.strerror or exc}") from exc
        return {
            "host": args.host,
            "address": address,
            "port": args.port,
            "open": found.received > 0,
            "last_error": last_error,
        } | rtt_summary(found.rtt_ms, found.sent)


RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV", "CAA"]


def _dns_name(value: str) -> str:
    if value.startswith("_"):  # SRV owner names: _service._proto.name
        check_host(value.replace("_", "x"))
        return value
    return check_host(value)


class DnsLookupArgs(Arguments):
    name: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        description="The name to look up (an address for PTR)"
    )
    types: list[RecordType] = Field(
        default_factory=lambda: list[RecordType](["A", "AAAA"]),
        min_length=1,
        max_length=10,
        description="Record types to ask for",
    )
    server: IpAddress | None = Field(
        None, description="DNS server address; this machine's servers when unset"
    )
    server_port: Port = Field(53, description="The DNS server's port")
    timeout_seconds: float = Field(3.0, ge=0.2, le=10, description="Wait for each answer")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _dns_name(value)


class DnsLookup(Action[DnsLookupArgs]):
    name = "dns_lookup"
    summary = "DNS records of a name, with timing and the server that answered."
    arguments = DnsLookupArgs
    timeout_seconds = 120.0

    def run(self, args: DnsLookupArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        # dnspython costs memory the agent should not carry until someone asks.
        from agent.facts.network import dns_query

        found = dns_query.query(
            args.name, args.types, args.server, args.server_port, args.timeout_seconds
        )
        return facts_or_unknown(found)


class TracerouteArgs(Arguments):
    host: Host = Field(description="Host name or IP address")
    max_hops: int = Field(15, ge=1, le=30, description="Give up after this many hops")
    timeout_seconds: float = Field(1.0, ge=0.2, le=3, description="Wait for each hop")


class Traceroute(Action[TracerouteArgs]):
    name = "traceroute"
    summary = "The path to a host, hop by hop (TTL probing where this machine permits it)."
    arguments = TracerouteArgs
    timeout_seconds = 120.0

    def run(self, args: TracerouteArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        address = resolve(args.host, 3.0)
        found = traceroute.trace(address, args.max_hops, args.timeout_seconds)
        if isinstance(found, Unavailable):
            return unknown(found.reason, host=args.host, address=address)
        details: dict[str, Any] = jsonable(found)
        return {"host": args.host, "status": "ok", **details}


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("only http:// and https:// URLs")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    check_host(parts.hostname)
    try:
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError:
        raise ValueError("the URL's port is out of range") from None
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("the URL contains spaces or control characters")
    return value


class HttpCheckArgs(Arguments):
    url: Annotated[str, Field(min_length=8, max_length=2048)] = Field(
        description="http:// or https:// URL"
    )
    method: Literal["GET", "HEAD"] = Field("GET", description="HTTP method")
    timeout_seconds: float = Field(10.0, ge=0.5, le=30, description="Wait for each phase")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _http_url(value)


class HttpCheck(Action[HttpCheckArgs]):
    name = "http_check"
    summary = "HTTP(S) status and timing, redirects not followed, and the TLS certificate."
    arguments = HttpCheckArgs
    timeout_seconds = 60.0

    def run(self, args: HttpCheckArgs, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        found = http_probe.probe(args.url, args.method, args.timeout_seconds)
        result = jsonable(found)
        assert isinstance(result, dict)
        return result


class InterfacesRoutes(Action[NoArguments]):
    name = "interfaces_routes"
    summary = "Network interfaces (state, addresses, MTU, errors) and the routing table."
    arguments = NoArguments
    timeout_seconds = 20.0

    def run(self, args: NoArguments, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        return {
            "interfaces": facts_or_unknown(ctx.source.interfaces()),
            "routes": facts_or_unknown(routes.routes()),
        }
