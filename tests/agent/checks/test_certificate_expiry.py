"""security.certificate_expiry judged on recorded certificates, and on real loopback servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.checks.certificate_expiry import CertificateExpiry
from agent.facts.live import LiveFacts
from agent.facts.models import Unavailable
from agent.facts.security.models import CertificateFacts, CertificatesFacts
from remdiag.vocabulary import CheckStatus
from tests.agent.facts.security.tls_server import issue, tls_server

CHECK = CertificateExpiry()
DEFAULTS = CHECK.thresholds({"endpoints": ["mail.example.com:993", "intranet.example.com"]})
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def cert(
    endpoint: str,
    days_left: float,
    *,
    verified: bool = True,
    verify_error: str | None = None,
) -> CertificateFacts:
    host, _, port = endpoint.partition(":")
    return CertificateFacts(
        endpoint,
        host,
        int(port or 443),
        subject=f"CN={host}",
        issuer="CN=R3,O=Let's Encrypt,C=US",
        not_before=NOW - timedelta(days=90 - days_left),
        not_after=NOW + timedelta(days=days_left),
        days_left=days_left,
        verified=verified,
        verify_error=verify_error,
    )


def unreachable(endpoint: str, error: str = "Connection refused") -> CertificateFacts:
    host, _, port = endpoint.partition(":")
    return CertificateFacts(endpoint, host, int(port or 443), error=error)


def certs(*found: CertificateFacts) -> CertificatesFacts:
    return CertificatesFacts(found)


MAIL = cert("mail.example.com:993", 54.2)
SELF_SIGNED = cert(
    "nas.example.com:443", 300, verified=False, verify_error="self-signed certificate"
)
RECORDED = [
    certs(MAIL),  # OK
    certs(MAIL, cert("intranet.example.com:443", 12.5)),  # WARNING
    certs(cert("intranet.example.com:443", 3.0)),  # CRITICAL
    certs(),  # UNKNOWN
]


def test_certificates_far_from_expiry_are_ok() -> None:
    outcome = CHECK.evaluate(certs(MAIL, cert("intranet.example.com:443", 200)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "2 certificates valid, soonest mail.example.com:993 expires in 54 days"
    )
    assert {v.name: v.value for v in outcome.values} == {
        "endpoints_checked": 2,
        "endpoints_unreachable": 0,
        "endpoints_untrusted": 0,
        "min_days_left": 54.2,
        "endpoint": "mail.example.com:993",
    }


def test_expiring_within_the_warning_limit_warns() -> None:
    outcome = CHECK.evaluate(certs(MAIL, cert("intranet.example.com:443", 12.5)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "intranet.example.com:443 expires in 12.5 days (2024-03-13; warning below 21)"
    )


def test_expiring_within_the_critical_limit_is_critical() -> None:
    outcome = CHECK.evaluate(certs(cert("intranet.example.com:443", 3.0)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "intranet.example.com:443 expires in 3.0 days (2024-03-04; critical below 7)"
    )


def test_already_expired_is_critical() -> None:
    expired = cert(
        "old.example.com:443", -2.0, verified=False, verify_error="certificate has expired"
    )
    outcome = CHECK.evaluate(certs(MAIL, expired), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "old.example.com:443 expired 2 days ago (2024-02-28)"


def test_untrusted_chain_warns_when_a_valid_chain_is_required() -> None:
    outcome = CHECK.evaluate(certs(SELF_SIGNED), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "nas.example.com:443 not trusted: self-signed certificate"
    assert {v.name: v.value for v in outcome.values}["endpoints_untrusted"] == 1
    lenient = DEFAULTS.model_copy(update={"require_valid_chain": False})
    assert CHECK.evaluate(certs(SELF_SIGNED), lenient).status is CheckStatus.OK


def test_an_unreachable_endpoint_beside_fine_ones_is_unknown() -> None:
    outcome = CHECK.evaluate(certs(MAIL, unreachable("intranet.example.com:443")), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.endswith(
        "; could not read intranet.example.com:443 (Connection refused)"
    )


def test_an_unreachable_endpoint_does_not_hide_an_expiring_one() -> None:
    outcome = CHECK.evaluate(
        certs(cert("mail.example.com:993", 2), unreachable("intranet.example.com:443")), DEFAULTS
    )
    assert outcome.status is CheckStatus.CRITICAL


def test_nothing_readable_is_unknown_with_the_errors() -> None:
    outcome = CHECK.evaluate(certs(unreachable("intranet.example.com:443", "timed out")), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not read intranet.example.com:443 (timed out)"


def test_no_endpoints_configured_is_unknown_with_a_hint() -> None:
    outcome = CHECK.evaluate(certs(), CHECK.thresholds())
    assert outcome.status is CheckStatus.UNKNOWN
    assert "host:port" in outcome.summary and "endpoints" in outcome.summary


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("no network"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: no network"


@pytest.mark.parametrize(
    ("valid_to_days", "require_valid_chain", "status"),
    [
        (100, True, CheckStatus.WARNING),  # self-signed: not trusted
        (100, False, CheckStatus.OK),
        (3, False, CheckStatus.CRITICAL),
        (-1, False, CheckStatus.CRITICAL),
    ],
)
def test_gathers_and_judges_a_real_loopback_server(
    tmp_path: Path, valid_to_days: float, require_valid_chain: bool, status: CheckStatus
) -> None:
    issued = issue("localhost", valid_from_days=-30, valid_to_days=valid_to_days)
    with tls_server(*issued.write(tmp_path, "server")) as port:
        thresholds = CHECK.thresholds(
            {"endpoints": [f"localhost:{port}"], "require_valid_chain": require_valid_chain}
        )
        outcome = CHECK.judge(CHECK.gather(LiveFacts(), thresholds), thresholds)
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(
    "overrides",
    [
        {"endpoints": ["host:0"]},
        {"endpoints": ["no spaces allowed:443"]},
        {"endpoints": [""]},
        {"endpoints": ["h:1"] * 33},
        {"min_days_left_warning": 5},  # warning below critical (7)
        {"min_days_left_critical": -1, "min_days_left_warning": 0},
        {"timeout_seconds": 0},
        {"timeout_seconds": 31},
        {"max_days_left": 3},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)


def test_endpoints_are_trimmed() -> None:
    assert CHECK.thresholds({"endpoints": [" a.example.com:8443 "]}).endpoints == (
        "a.example.com:8443",
    )
