"""disk.smart judged on recorded drives: parsed smartctl fixtures and hand-built edge cases."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.checks.smart import DiskSmart
from agent.facts.hardware import smart
from agent.facts.hardware.models import (
    SMART_BIT_ERROR_LOG,
    SMART_BIT_SELF_TEST_ERRORS,
    SmartDrive,
    SmartFacts,
)
from agent.facts.models import Unavailable
from remdiag.vocabulary import CheckStatus

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hardware" / "smartctl"
CHECK = DiskSmart()
DEFAULTS = CHECK.thresholds()


def recorded(name: str) -> SmartDrive:
    parsed = smart.parse_device((FIXTURES / name).read_text(encoding="utf-8"))
    assert isinstance(parsed, SmartDrive)
    return parsed


SSD = recorded("ata_ssd.json")
NVME = recorded("nvme.json")
FAILING = recorded("failing_hdd.json")


def drives(*found: SmartDrive, errors: tuple[str, ...] = ()) -> SmartFacts:
    return SmartFacts(found, errors)


def ssd(**changes: object) -> SmartDrive:
    return dataclasses.replace(SSD, **changes)  # type: ignore[arg-type]


def nvme(**changes: object) -> SmartDrive:
    return dataclasses.replace(NVME, **changes)  # type: ignore[arg-type]


def values(facts: SmartFacts) -> dict[str, object]:
    return {v.name: v.value for v in CHECK.evaluate(facts, DEFAULTS).values}


RECORDED = [
    drives(SSD, NVME),  # OK
    drives(ssd(reallocated_sectors=8)),  # WARNING
    drives(SSD, FAILING),  # CRITICAL
    drives(errors=("/dev/sda: Permission denied",)),  # UNKNOWN
]


def test_healthy_drives_are_ok_and_named() -> None:
    outcome = CHECK.evaluate(drives(SSD, NVME), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "2 drives healthy: /dev/sda (Samsung SSD 860 EVO 500GB), "
        "/dev/nvme0 (Samsung SSD 970 EVO Plus 1TB)"
    )
    got = values(drives(SSD, NVME))
    assert got["drives"] == 2 and got["unreadable_drives"] == 0
    assert got["health"] == "passed"


def test_the_failing_disk_is_critical_with_every_critical_finding() -> None:
    outcome = CHECK.evaluate(drives(SSD, FAILING), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "/dev/sda (ST1000DM003-1SB102) critical: SMART health check failed, "
        "attributes at their failure threshold: Reallocated_Sector_Ct, "
        "3928 reallocated sectors (above 100), 48 pending sectors (above 10), "
        "460 uncorrectable errors (above 10)"
    )
    got = values(drives(FAILING))
    assert got["health"] == "failed"
    assert got["pending_sectors"] == 48
    assert got["power_on_hours"] == 42310


def test_a_few_reallocated_sectors_warn() -> None:
    outcome = CHECK.evaluate(drives(ssd(reallocated_sectors=8)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("warning: 8 reallocated sectors (above 0)")


def test_pending_sectors_past_the_limit_are_critical() -> None:
    outcome = CHECK.evaluate(drives(ssd(pending_sectors=11)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("critical: 11 pending sectors (above 10)")


def test_a_worn_nvme_drive_warns_then_goes_critical() -> None:
    worn = CHECK.evaluate(drives(nvme(nvme_percentage_used=85)), DEFAULTS)
    assert worn.status is CheckStatus.WARNING
    assert worn.summary.endswith("85% of rated endurance used (above 80%)")
    spent = CHECK.evaluate(drives(nvme(nvme_percentage_used=103)), DEFAULTS)
    assert spent.status is CheckStatus.CRITICAL


def test_nvme_media_errors_warn() -> None:
    outcome = CHECK.evaluate(drives(nvme(nvme_media_errors=2)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert "2 media errors (above 0)" in outcome.summary


@pytest.mark.parametrize(
    ("bits", "status", "words"),
    [
        (0x01, CheckStatus.CRITICAL, "spare blocks below threshold"),
        (0x02, CheckStatus.WARNING, "temperature out of range"),
        (0x04, CheckStatus.CRITICAL, "reliability degraded by media errors"),
        (0x08, CheckStatus.CRITICAL, "switched to read-only"),
    ],
)
def test_nvme_critical_warning_bits(bits: int, status: CheckStatus, words: str) -> None:
    outcome = CHECK.evaluate(drives(nvme(nvme_critical_warning=bits)), DEFAULTS)
    assert outcome.status is status
    assert f"NVMe critical warning: {words}" in outcome.summary


def test_a_failed_self_test_warns() -> None:
    outcome = CHECK.evaluate(drives(ssd(exit_status=SMART_BIT_SELF_TEST_ERRORS)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("warning: a self-test failed")


def test_the_error_log_warns_only_when_asked() -> None:
    logged = drives(ssd(exit_status=SMART_BIT_ERROR_LOG))
    assert CHECK.evaluate(logged, DEFAULTS).status is CheckStatus.OK
    strict = CHECK.thresholds({"warn_on_error_log": True})
    assert CHECK.evaluate(logged, strict).status is CheckStatus.WARNING


def test_an_attribute_failed_in_the_past_warns() -> None:
    past = FAILING.failed_attributes_in_past
    outcome = CHECK.evaluate(drives(ssd(attributes=past)), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert "attributes failed in the past: Airflow_Temperature_Cel" in outcome.summary


def test_other_unhealthy_drives_are_mentioned() -> None:
    outcome = CHECK.evaluate(drives(FAILING, nvme(nvme_media_errors=1)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary.endswith("; also /dev/nvme0 (Samsung SSD 970 EVO Plus 1TB) not healthy")


def test_an_unreadable_drive_beside_readable_ones_is_reported_without_hiding_them() -> None:
    facts = drives(SSD, errors=("/dev/sdb: Unknown USB bridge",))
    outcome = CHECK.evaluate(facts, DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary.endswith("; could not read /dev/sdb: Unknown USB bridge")
    assert values(facts)["unreadable_drives"] == 1


def test_no_readable_drive_is_unknown_with_the_reasons() -> None:
    outcome = CHECK.evaluate(drives(errors=("/dev/sda: Permission denied",)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "no drive readable: /dev/sda: Permission denied"
    assert CHECK.evaluate(drives(), DEFAULTS).summary == "no drive found"


def test_smartctl_missing_is_unknown() -> None:
    reason = "smartctl is not installed (install smartmontools to read disk health)"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_reallocated_sectors_warning": 200},  # above critical (100)
        {"max_pending_sectors_warning": 11},
        {"max_uncorrectable_errors_critical": -1},
        {"max_nvme_percentage_used_warning": 120},
        {"max_nvme_media_errors_warning": 20},
        {"max_nvme_percentage_used_critical": 256},
        {"max_reallocated": 3},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
