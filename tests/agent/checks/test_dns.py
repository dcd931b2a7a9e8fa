"""network.dns judged on recorded lookups."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.dns import DnsResolution
from agent.facts.models import DnsFacts, DnsLookup, Unavailable
from remdiag.vocabulary import CheckStatus

CHECK = DnsResolution()
DEFAULTS = CHECK.thresholds({"names": ["mail.example.com", "files.example.com"]})

FAST = DnsLookup("mail.example.com", ("192.0.2.10",), 12.0)
SLOW = DnsLookup("files.example.com", ("192.0.2.11",), 812.0)
FAILED = DnsLookup("files.example.com", (), 0.0, "Name or service not known")
TIMED_OUT = DnsLookup("intranet.example.com", (), 3000.0, "timed out after 3s")

RECORDED = [DnsFacts((FAST,)), DnsFacts((FAST, SLOW)), DnsFacts((FAST, FAILED)), DnsFacts(())]


def test_quick_answers_are_ok() -> None:
    outcome = CHECK.evaluate(DnsFacts((FAST,)), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "resolved 1 name, slowest mail.example.com in 12 ms"


def test_a_slow_answer_warns() -> None:
    outcome = CHECK.evaluate(DnsFacts((FAST, SLOW)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "slow DNS: files.example.com took 812 ms (warning above 500 ms)"


def test_a_name_that_does_not_resolve_is_critical_and_named() -> None:
    outcome = CHECK.evaluate(DnsFacts((FAST, FAILED, TIMED_OUT)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "could not resolve files.example.com (Name or service not known), "
        "intranet.example.com (timed out after 3s)"
    )
    assert {v.name: v.value for v in outcome.values}["names_failed"] == 2


def test_nothing_to_resolve_is_unknown() -> None:
    outcome = CHECK.evaluate(DnsFacts(()), CHECK.thresholds())
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "no names configured to resolve"


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    assert CHECK.judge(Unavailable("no resolver"), DEFAULTS).status is CheckStatus.UNKNOWN


@pytest.mark.parametrize(
    "overrides",
    [
        {"names": [""]},
        {"names": ["a.example"] * 17},
        {"timeout_seconds": 0},
        {"max_resolve_ms_warning": -1},
        {"servers": ["192.0.2.53"]},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
