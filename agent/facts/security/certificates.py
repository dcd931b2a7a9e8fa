"""TLS certificate facts: connect to an endpoint and read its certificate, trusted or not.

The normal, verifying handshake is tried first; when verification fails the certificate is read
again over an unverified handshake, so an expired or self-signed certificate is still reported
(with why verification failed) instead of hiding behind the error.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from agent.facts.security.models import CertificateFacts, CertificatesFacts

DEFAULT_PORT = 443
MAX_PARALLEL = 8
DAY_SECONDS = 86400.0

_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+))(?::(?P<port>\d+))?$")


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """("host", port) from "host:port", "[::1]:8443" or "host" (port 443); ValueError if bad."""
    match = _ENDPOINT.match(endpoint.strip())
    if match is None:
        raise ValueError(f"not host:port: {endpoint!r}")
    port = int(match.group("port") or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {endpoint!r}")
    return match.group("v6") or match.group("host"), port


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _peer_certificate(
    host: str, port: int, context: ssl.SSLContext, timeout_s: float
) -> bytes | None:
    with (
        socket.create_connection((host, port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fetch_certificate(
    endpoint: str,
    timeout_s: float,
    *,
    now: datetime | None = None,
    cafile: str | None = None,
) -> CertificateFacts:
    """The certificate `endpoint` presents, and whether normal verification accepts it.

    `cafile` replaces the system trust store (tests use it to trust their own authority).
    """
    try:
        host, port = parse_endpoint(endpoint)
    except ValueError as exc:
        return CertificateFacts(endpoint, endpoint, 0, error=str(exc))
    verify_error: str | None = None
    try:
        der = _peer_certificate(host, port, ssl.create_default_context(cafile=cafile), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or _error_text(exc)
        try:
            der = _peer_certificate(host, port, _unverified_context(), timeout_s)
        except (OSError, ValueError) as again:
            return CertificateFacts(
                endpoint, host, port, verify_error=verify_error, error=_error_text(again)
            )
    except (OSError, ValueError) as exc:
        return CertificateFacts(endpoint, host, port, error=_error_text(exc))
    if not der:
        return CertificateFacts(endpoint, host, port, error="the server sent no certificate")
    return describe_certificate(
        endpoint, host, port, der, now or datetime.now(UTC), verify_error=verify_error
    )


def describe_certificate(
    endpoint: str,
    host: str,
    port: int,
    der: bytes,
    now: datetime,
    *,
    verify_error: str | None,
) -> CertificateFacts:
    """Facts from a DER certificate: subject, issuer, validity and days left at `now`."""
    # Imported here: it weighs about 10 MB, paid only by agents that watch an endpoint.
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return CertificateFacts(endpoint, host, port, error=f"unreadable certificate: {exc}")
    not_after = cert.not_valid_after_utc
    return CertificateFacts(
        endpoint,
        host,
        port,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        days_left=(not_after - now).total_seconds() / DAY_SECONDS,
        verified=verify_error is None,
        verify_error=verify_error,
    )


def certificates(
    endpoints: Sequence[str], timeout_s: float, *, cafile: str | None = None
) -> CertificatesFacts:
    """Every endpoint's certificate, read in parallel so a dead host costs one timeout."""
    if not endpoints:
        return CertificatesFacts(())
    with ThreadPoolExecutor(
        max_workers=min(MAX_PARALLEL, len(endpoints)), thread_name_prefix="remdiag-tls"
    ) as pool:
        found = pool.map(lambda e: fetch_certificate(e, timeout_s, cafile=cafile), endpoints)
        return CertificatesFacts(tuple(found))
