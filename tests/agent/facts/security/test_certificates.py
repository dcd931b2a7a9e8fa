"""Certificate facts read from real TLS servers on loopback, with certificates made here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.facts.security import certificates
from agent.facts.security.models import CertificateFacts
from tests.agent.facts.security.tls_server import closed_port, issue, plain_server, tls_server

TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("certs")
    authority = issue("remdiag test CA", valid_from_days=-1, valid_to_days=365, ca=True)
    return {
        "valid": issue("localhost", valid_from_days=-1, valid_to_days=100).write(directory, "v"),
        "expiring": issue("localhost", valid_from_days=-80, valid_to_days=3).write(directory, "e"),
        "expired": issue("localhost", valid_from_days=-90, valid_to_days=-2).write(directory, "x"),
        "ca": authority.write(directory, "ca"),
        "trusted": issue(
            "localhost", valid_from_days=-1, valid_to_days=100, issuer=authority
        ).write(directory, "t"),
    }


def fetch(port: int, host: str = "localhost", cafile: str | None = None) -> CertificateFacts:
    return certificates.fetch_certificate(f"{host}:{port}", TIMEOUT_S, cafile=cafile)


def test_self_signed_valid_for_100_days(certs: dict[str, tuple[Path, Path]]) -> None:
    with tls_server(*certs["valid"]) as port:
        facts = fetch(port)
    assert facts.error is None
    assert (facts.host, facts.port, facts.endpoint) == ("localhost", port, f"localhost:{port}")
    assert facts.subject == "CN=localhost" and facts.issuer == "CN=localhost"
    assert facts.days_left is not None and 99.9 < facts.days_left <= 100.0
    assert facts.not_after is not None and facts.not_after > datetime.now(UTC)
    assert not facts.verified
    assert facts.verify_error is not None and "self" in facts.verify_error.lower()


def test_certificate_expiring_in_3_days(certs: dict[str, tuple[Path, Path]]) -> None:
    with tls_server(*certs["expiring"]) as port:
        facts = fetch(port)
    assert facts.days_left is not None and 2.9 < facts.days_left <= 3.0


def test_expired_certificate_is_still_read(certs: dict[str, tuple[Path, Path]]) -> None:
    with tls_server(*certs["expired"]) as port:
        facts = fetch(port)
    assert facts.error is None and not facts.verified
    assert facts.days_left is not None and -2.1 < facts.days_left < -1.9


def test_a_trusted_chain_verifies(certs: dict[str, tuple[Path, Path]]) -> None:
    with tls_server(*certs["trusted"]) as port:
        facts = fetch(port, cafile=str(certs["ca"][0]))
    assert facts.verified and facts.verify_error is None
    assert facts.issuer == "CN=remdiag test CA"


def test_a_name_mismatch_fails_verification_but_is_read(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    with tls_server(*certs["trusted"]) as port:
        facts = fetch(port, host="127.0.0.1", cafile=str(certs["ca"][0]))
    assert facts.error is None and facts.days_left is not None
    assert not facts.verified
    assert facts.verify_error is not None and "mismatch" in facts.verify_error.lower()


def test_nothing_listening_is_an_error_not_an_exception() -> None:
    facts = fetch(closed_port(), host="127.0.0.1")
    assert facts.error is not None and "refused" in facts.error.lower()
    assert facts.days_left is None and not facts.verified


def test_a_server_that_does_not_speak_tls_is_an_error() -> None:
    with plain_server() as port:
        facts = fetch(port, host="127.0.0.1")
    assert facts.error
    assert facts.days_left is None


def test_several_endpoints_in_order(certs: dict[str, tuple[Path, Path]]) -> None:
    with tls_server(*certs["valid"]) as good, tls_server(*certs["expired"]) as bad:
        endpoints = [f"localhost:{good}", f"127.0.0.1:{closed_port()}", f"localhost:{bad}"]
        found = certificates.certificates(endpoints, TIMEOUT_S)
    assert [c.endpoint for c in found.certificates] == endpoints
    good_facts, closed, bad_facts = found.certificates
    assert good_facts.days_left is not None and good_facts.days_left > 99
    assert closed.error is not None
    assert bad_facts.days_left is not None and bad_facts.days_left < 0


def test_no_endpoints_reads_nothing() -> None:
    assert certificates.certificates([], TIMEOUT_S).certificates == ()


def test_a_bad_endpoint_is_an_error() -> None:
    facts = certificates.fetch_certificate("no port here:x", TIMEOUT_S)
    assert facts.error is not None and facts.port == 0


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("example.com:8443", ("example.com", 8443)),
        ("example.com", ("example.com", 443)),
        ("[::1]:443", ("::1", 443)),
        ("[2001:db8::5]", ("2001:db8::5", 443)),
        (" 192.0.2.7:993 ", ("192.0.2.7", 993)),
    ],
)
def test_endpoints(endpoint: str, expected: tuple[str, int]) -> None:
    assert certificates.parse_endpoint(endpoint) == expected


@pytest.mark.parametrize("endpoint", ["", "a b:1", "host:0", "host:70000", "::1:443", "host:"])
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError):
        certificates.parse_endpoint(endpoint)
