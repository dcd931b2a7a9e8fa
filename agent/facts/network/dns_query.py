"""DNS lookups by record type straight to a DNS server (dnspython), timed, naming who answered.

Unlike reachability.resolve (the system resolver: hosts file, caches, what an application
sees), this asks DNS itself: the servers this machine is configured with, or one named server.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from agent.facts.models import Unavailable

MAX_RECORDS = 100


@dataclass(frozen=True)
class DnsRecordsLookup:
    record_type: str
    records: tuple[str, ...]
    elapsed_ms: float
    server: str = ""
    """The server that answered, "address:port"; empty when none did."""
    rcode: str = ""
    """The response code, e.g. "NOERROR", "NXDOMAIN"; empty without an answer."""
    ttl: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class DnsQueryFacts:
    name: str
    """The name asked about (the reverse name for a PTR lookup of an address)."""
    servers: tuple[str, ...]
    """The servers that were asked, in order."""
    lookups: tuple[DnsRecordsLookup, ...]


def _resolver(server: str | None, port: int, timeout_s: float) -> dns.resolver.Resolver:
    if server is None:
        resolver = dns.resolver.Resolver(configure=True)
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server]
        resolver.port = port
    resolver.lifetime = timeout_s
    resolver.timeout = timeout_s
    return resolver


def query(
    name: str,
    record_types: Sequence[str],
    server: str | None,
    port: int,
    timeout_s: float,
) -> DnsQueryFacts | Unavailable:
    """Look `name` up once per record type; `server` None means this machine's DNS servers."""
    try:
        resolver = _resolver(server, port, timeout_s)
    except dns.exception.DNSException as exc:
        return Unavailable(f"no DNS server configured: {exc}")
    qname = name
    lookups = []
    for record_type in record_types:
        if record_type == "PTR" and _is_address(name):
            qname = dns.reversename.from_address(name).to_text()
        lookups.append(_lookup(resolver, qname, record_type, timeout_s))
    servers = tuple(f"{s}:{resolver.port}" for s in resolver.nameservers)
    return DnsQueryFacts(qname, servers, tuple(lookups))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _lookup(
    resolver: dns.resolver.Resolver, name: str, record_type: str, timeout_s: float
) -> DnsRecordsLookup:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000.0, 2)

    try:
        answer = resolver.resolve(
            name, record_type, raise_on_no_answer=False, search=False, lifetime=timeout_s
        )
    except dns.resolver.NXDOMAIN:
        return DnsRecordsLookup(record_type, (), elapsed(), rcode="NXDOMAIN", error="no such name")
    except dns.resolver.LifetimeTimeout:
        return DnsRecordsLookup(
            record_type, (), elapsed(), error=f"no answer within {timeout_s:g} s"
        )
    except dns.exception.DNSException as exc:
        return DnsRecordsLookup(record_type, (), elapsed(), error=str(exc) or type(exc).__name__)
    records = tuple(r.to_text() for r in answer.rrset or ())[:MAX_RECORDS]
    return DnsRecordsLookup(
        record_type,
        records,
        elapsed(),
        server=f"{answer.nameserver}:{answer.port}",
        rcode=dns.rcode.to_text(answer.response.rcode()),
        ttl=answer.rrset.ttl if answer.rrset is not None else None,
    )
