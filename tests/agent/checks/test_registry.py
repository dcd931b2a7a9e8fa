"""The registry, and what every registered check declares and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Check, Thresholds
from agent.checks.registry import CHECKS, get_check
from agent.facts.live import LiveFacts
from remdiag.vocabulary import CheckStatus
from tests.agent.checks import (
    test_cpu,
    test_disk,
    test_dns,
    test_gateway,
    test_memory,
    test_uptime,
)

RECORDED: dict[str, list[Any]] = {
    "cpu.sustained_load": test_cpu.RECORDED,
    "disk.free_space": test_disk.RECORDED,
    "network.dns": test_dns.RECORDED,
    "network.gateway": test_gateway.RECORDED,
    "memory.pressure": test_memory.RECORDED,
    "uptime.reboot_overdue": test_uptime.RECORDED,
}
ALL = sorted(CHECKS.values(), key=lambda check: check.id)


def test_every_check_is_registered_under_its_own_id() -> None:
    assert set(CHECKS) == set(RECORDED)
    assert all(check_id == check.id for check_id, check in CHECKS.items())
    assert get_check("disk.free_space") is CHECKS["disk.free_space"]


def test_an_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown check 'disk\.nope'.*disk\.free_space"):
        get_check("disk.nope")


@pytest.mark.parametrize("check", ALL, ids=lambda check: check.id)
def test_declarations_are_complete(check: Check[Any, Any]) -> None:
    assert check.title and check.remediation
    assert check.default_interval.total_seconds() > 0
    assert issubclass(check.thresholds_type, Thresholds)
    names = [spec.name for spec in check.emits]
    assert names and len(names) == len(set(names))


@pytest.mark.parametrize("check", ALL, ids=lambda check: check.id)
def test_reported_values_are_declared(check: Check[Any, Any]) -> None:
    declared = {(spec.name, spec.unit) for spec in check.emits}
    statuses = set()
    for facts in RECORDED[check.id]:
        outcome = check.evaluate(facts, check.thresholds())
        statuses.add(outcome.status)
        assert outcome.summary
        assert {(value.name, value.unit) for value in outcome.values} <= declared
    assert {CheckStatus.OK, CheckStatus.WARNING, CheckStatus.CRITICAL} <= statuses


# Loopback only: never the real gateway or a real DNS server.
LOOPBACK_OVERRIDES: dict[str, dict[str, Any]] = {
    "network.gateway": {"target": "127.0.0.1", "probes": 1},
    "network.dns": {"names": ["localhost"]},
}


@pytest.mark.parametrize("check", ALL, ids=lambda check: check.id)
def test_gathers_and_judges_this_machine(check: Check[Any, Any], tmp_path: Path) -> None:
    overrides = LOOPBACK_OVERRIDES.get(check.id, {})
    if check.id == "disk.free_space":
        overrides = {"paths": [str(tmp_path)]}
    thresholds = check.thresholds(overrides)
    outcome = check.judge(check.gather(LiveFacts(), thresholds), thresholds)
    assert outcome.status is not CheckStatus.UNKNOWN, outcome.summary
    declared = {(spec.name, spec.unit) for spec in check.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
