"""One HTTP(S) request, timed phase by phase, with the server's TLS certificate described.

Redirects are reported, never followed. A certificate that fails verification is still read
(over a second, unverified handshake) so an expired or self-signed one shows what is wrong.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from agent.facts import reachability
from agent.facts.security.certificates import describe_certificate

USER_AGENT = "remdiag-agent"
SHOWN_HEADERS = (
    "server",
    "location",
    "content-type",
    "content-length",
    "strict-transport-security",
)


@dataclass(frozen=True)
class TlsDetails:
    version: str
    cipher: str
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_before: str
    not_after: str
    days_left: float | None
    verified: bool
    verify_error: str = ""


@dataclass(frozen=True)
class HttpProbeFacts:
    url: str
    address: str
    """The address connected to ("" when the name did not resolve)."""
    status: int | None
    reason: str
    headers: dict[str, str]
    redirect_to: str
    """The Location of a 3xx answer, not followed."""
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    first_byte_ms: float | None
    total_ms: float
    tls: TlsDetails | None
    error: str = ""


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 2)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def subject_alt_names(der: bytes) -> tuple[str, ...]:
    """DNS names and IP addresses the certificate is valid for."""
    from cryptography import x509  # heavy: loaded only when a certificate is described

    try:
        cert = x509.load_der_x509_certificate(der)
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return ()
    names = [str(n) for n in extension.value.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in extension.value.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _tls(raw: socket.socket, host: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    return context.wrap_socket(raw, server_hostname=host)


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def probe(url: str, method: str, timeout_s: float, cafile: str | None = None) -> HttpProbeFacts:
    """Send `method` to `url` and describe the answer; never raises for network failures."""
    started = time.perf_counter()
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    timings: dict[str, float | None] = {"dns": None, "connect": None, "tls": None, "first": None}

    def failed(error: str, address: str = "", tls: TlsDetails | None = None) -> HttpProbeFacts:
        return HttpProbeFacts(
            url, address, None, "", {}, "", timings["dns"], timings["connect"], timings["tls"],
            None, _ms(started), tls, error,
        )  # fmt: skip

    phase = time.perf_counter()
    lookup = reachability.resolve([host], timeout_s).lookups[0]
    timings["dns"] = _ms(phase)
    if lookup.error is not None or not lookup.addresses:
        return failed(f"cannot resolve {host}: {lookup.error or 'no address'}")
    address = lookup.addresses[0]
    tls: TlsDetails | None = None
    try:
        phase = time.perf_counter()
        raw = socket.create_connection((address, port), timeout=timeout_s)
        timings["connect"] = _ms(phase)
    except OSError as exc:
        return failed(f"cannot connect to {address}:{port}: {_error_text(exc)}", address)
    sock: socket.socket = raw
    try:
        if https:
            phase = time.perf_counter()
            verify_error = ""
            try:
                sock = _tls(raw, host, ssl.create_default_context(cafile=cafile))
            except ssl.SSLCertVerificationError as exc:
                verify_error = exc.verify_message or _error_text(exc)
                raw.close()
                raw = socket.create_connection((address, port), timeout=timeout_s)
                sock = _tls(raw, host, _unverified())
            timings["tls"] = _ms(phase)
            assert isinstance(sock, ssl.SSLSocket)
            tls = _describe(sock, url, host, port, verify_error)
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        connection.sock = sock  # our timed, already connected socket
        phase = time.perf_counter()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(
            method, target, headers={"User-Agent": USER_AGENT, "Connection": "close"}
        )
        response = connection.getresponse()
        timings["first"] = _ms(phase)
        headers = {
            k.lower(): v[:500] for k, v in response.getheaders() if k.lower() in SHOWN_HEADERS
        }
        redirect = headers.get("location", "") if 300 <= response.status < 400 else ""
        response.close()
        connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return failed(_error_text(exc), address, tls)
    finally:
        sock.close()
    return HttpProbeFacts(
        url, address, response.status, response.reason[:200], headers, redirect,
        timings["dns"], timings["connect"], timings["tls"], timings["first"], _ms(started), tls,
    )  # fmt: skip


def _describe(sock: ssl.SSLSocket, url: str, host: str, port: int, verify_error: str) -> TlsDetails:
    der = sock.getpeercert(binary_form=True) or b""
    cipher = sock.cipher()
    cert = describe_certificate(
        url, host, port, der, datetime.now(UTC), verify_error=verify_error or None
    )
    return TlsDetails(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        subject=cert.subject,
        issuer=cert.issuer,
        san=subject_alt_names(der) if der else (),
        not_before=cert.not_before.isoformat() if cert.not_before else "",
        not_after=cert.not_after.isoformat() if cert.not_after else "",
        days_left=round(cert.days_left, 2) if cert.days_left is not None else None,
        verified=not verify_error,
        verify_error=verify_error,
    )
