"""security.certificate_expiry: TLS certificates of chosen servers are not about to expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_min
from agent.facts.models import Unavailable
from agent.facts.security.certificates import parse_endpoint
from agent.facts.security.models import CertificateFacts, CertificatesFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


def _valid_endpoint(value: str) -> str:
    parse_endpoint(value)  # ValueError says what is wrong
    return value.strip()


Endpoint = Annotated[str, Field(min_length=1, max_length=262), AfterValidator(_valid_endpoint)]


class CertificateExpiryThresholds(Thresholds):
    endpoints: tuple[Endpoint, ...] = Field(default=(), max_length=32)
    """TLS servers to watch, as "host:port" ("[::1]:8443"; the port defaults to 443)."""
    min_days_left_warning: float = Field(default=21, ge=0)
    min_days_left_critical: float = Field(default=7, ge=0)
    require_valid_chain: bool = True
    """Warn when normal verification fails (self-signed, unknown authority, wrong name)."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.min_days_left_warning < self.min_days_left_critical:
            raise ValueError("min_days_left_warning must not be below min_days_left_critical")
        return self


class CertificateExpiry(Check[CertificatesFacts, CertificateExpiryThresholds]):
    id = "security.certificate_expiry"
    title = "TLS certificates not expiring"
    category = Category.SECURITY
    default_interval = timedelta(hours=6)
    remediation = (
        "Nothing to do on this PC: forward the ticket to whoever runs the named server so they "
        "renew its certificate (or fix its chain or name) before it expires. Until then, users "
        "will see security warnings or fail to connect."
    )
    emits = (
        ValueSpec("min_days_left", "days", "days until the soonest certificate expires"),
        ValueSpec("endpoint", "", "the endpoint whose certificate expires soonest"),
        ValueSpec("endpoints_checked", "count", "endpoints whose certificate was read"),
        ValueSpec("endpoints_unreachable", "count", "endpoints that gave no certificate"),
        ValueSpec("endpoints_untrusted", "count", "certificates that failed verification"),
    )
    thresholds_type = CertificateExpiryThresholds

    def gather(
        self, source: FactSource, thresholds: CertificateExpiryThresholds
    ) -> CertificatesFacts | Unavailable:
        return source.certificates(thresholds.endpoints, thresholds.timeout_seconds)

    def evaluate(
        self, facts: CertificatesFacts, thresholds: CertificateExpiryThresholds
    ) -> Outcome:
        if not facts.certificates:
            return Outcome(
                CheckStatus.UNKNOWN,
                'no endpoints configured: list "host:port" entries in this check\'s endpoints',
            )
        read = [c for c in facts.certificates if c.error is None and c.days_left is not None]
        failed = [c for c in facts.certificates if c not in read]
        untrusted = [c for c in read if not c.verified]
        values = [
            Measured("endpoints_checked", len(read), "count"),
            Measured("endpoints_unreachable", len(failed), "count"),
            Measured("endpoints_untrusted", len(untrusted), "count"),
        ]
        soonest = min(read, key=_days_left, default=None)
        if soonest is not None:
            values.append(Measured("min_days_left", round(_days_left(soonest), 1), "days"))
            values.append(Measured("endpoint", soonest.endpoint, ""))
        judged = [(_grade(c, thresholds), c) for c in read]
        status = max((s for (s, _), _ in judged), default=CheckStatus.OK)
        problems = [f"{c.endpoint} {why}" for (s, why), c in judged if s is status and why]
        if status is CheckStatus.OK and soonest is not None:
            problems = [
                f"{len(read)} certificate{'s' if len(read) > 1 else ''} valid, soonest "
                f"{soonest.endpoint} expires in {_days_left(soonest):.0f} days"
            ]
        if failed:
            problems.append(
                "could not read " + ", ".join(f"{c.endpoint} ({c.error})" for c in failed)
            )
            # An endpoint we could not read is not known to be fine.
            status = CheckStatus.UNKNOWN if status is CheckStatus.OK else status
        return Outcome(status, "; ".join(problems), tuple(values))


def _days_left(cert: CertificateFacts) -> float:
    return cert.days_left if cert.days_left is not None else 0.0


def _grade(cert: CertificateFacts, t: CertificateExpiryThresholds) -> tuple[CheckStatus, str]:
    """The certificate's status and, when not OK, why."""
    days = _days_left(cert)
    expires = cert.not_after.date().isoformat() if cert.not_after else "?"
    if days < 0:
        return CheckStatus.CRITICAL, f"expired {-days:.0f} days ago ({expires})"
    status = grade_min(days, t.min_days_left_warning, t.min_days_left_critical)
    if status is not CheckStatus.OK:
        limit = (
            t.min_days_left_critical if status is CheckStatus.CRITICAL else t.min_days_left_warning
        )
        return status, f"expires in {days:.1f} days ({expires}; {status.label} below {limit:g})"
    if not cert.verified and t.require_valid_chain:
        return CheckStatus.WARNING, f"not trusted: {cert.verify_error}"
    return CheckStatus.OK, ""
