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
    test_antivirus,
    test_battery,
    test_certificate_expiry,
    test_cpu,
    test_disk,
    test_disk_encryption,
    test_disk_fill,
    test_dns,
    test_firewall,
    test_gateway,
    test_inodes,
    test_interface,
    test_log_errors,
    test_memory,
    test_process_runaway,
    test_reboot_required,
    test_security_updates,
    test_service_down,
    test_smart,
    test_swap,
    test_target_reachability,
    test_temperature,
    test_time_drift,
    test_unexpected_listener,
    test_uptime,
    test_wifi_signal,
)

RECORDED: dict[str, list[Any]] = {
    "battery.wear": test_battery.RECORDED,
    "cpu.sustained_load": test_cpu.RECORDED,
    "disk.fill_soon": test_disk_fill.RECORDED,
    "disk.free_space": test_disk.RECORDED,
    "disk.inodes": test_inodes.RECORDED,
    "disk.smart": test_smart.RECORDED,
    "log.error_burst": test_log_errors.RECORDED,
    "memory.pressure": test_memory.RECORDED,
    "memory.swap": test_swap.RECORDED,
    "network.dns": test_dns.RECORDED,
    "network.gateway": test_gateway.RECORDED,
    "network.interface": test_interface.RECORDED,
    "network.target_reachability": test_target_reachability.RECORDED,
    "network.unexpected_listener": test_unexpected_listener.RECORDED,
    "network.wifi_signal": test_wifi_signal.RECORDED,
    "os.reboot_required": test_reboot_required.RECORDED,
    "process.runaway": test_process_runaway.RECORDED,
    "security.antivirus": test_antivirus.RECORDED,
    "security.certificate_expiry": test_certificate_expiry.RECORDED,
    "security.disk_encryption": test_disk_encryption.RECORDED,
    "security.firewall": test_firewall.RECORDED,
    "sensors.temperature": test_temperature.RECORDED,
    "service.down": test_service_down.RECORDED,
    "time.drift": test_time_drift.RECORDED,
    "updates.security_pending": test_security_updates.RECORDED,
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
    # Every check can pass and can fail (the firewall has no warning level: off is critical).
    assert CheckStatus.OK in statuses
    assert statuses & {CheckStatus.WARNING, CheckStatus.CRITICAL}


# Loopback only: never the real gateway or a real DNS server.
LOOPBACK_OVERRIDES: dict[str, dict[str, Any]] = {
    "network.gateway": {"target": "127.0.0.1", "probes": 1},
    "network.dns": {"names": ["localhost"]},
    "network.target_reachability": {"targets": ["127.0.0.1"], "probes": 1},
}
# What this container cannot show: no SMART tool, battery, sensors, Wi-Fi, firewall tool,
# antivirus, systemd or journal, no history yet, no TLS endpoint configured. These must say
# why; every other check must measure for real.
UNKNOWN_HERE_WITH_REASON = {
    "disk.smart",
    "disk.fill_soon",
    "battery.wear",
    "sensors.temperature",
    "network.wifi_signal",
    "security.firewall",
    "security.antivirus",
    "security.certificate_expiry",
    "service.down",
    "log.error_burst",
}


@pytest.mark.parametrize("check", ALL, ids=lambda check: check.id)
def test_gathers_and_judges_this_machine(check: Check[Any, Any], tmp_path: Path) -> None:
    overrides = LOOPBACK_OVERRIDES.get(check.id, {})
    if check.id == "disk.free_space":
        overrides = {"paths": [str(tmp_path)]}
    thresholds = check.thresholds(overrides)
    outcome = check.judge(check.gather(LiveFacts(state_dir=tmp_path), thresholds), thresholds)
    assert outcome.summary
    declared = {(spec.name, spec.unit) for spec in check.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    if outcome.status is CheckStatus.UNKNOWN:
        assert check.id in UNKNOWN_HERE_WITH_REASON, outcome.summary
        assert len(outcome.summary) > 20, "an UNKNOWN must say why"
    declared = {(spec.name, spec.unit) for spec in check.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
