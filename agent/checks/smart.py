"""disk.smart: warns when a drive's own SMART health data says it is wearing out or failing.

A drive that reports failing health, sectors it could not read, or (NVMe) its critical warning
flags often dies within weeks: the time to save the data is before that.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.hardware.models import (
    SMART_BIT_ATTRIBUTE_PAST,
    SMART_BIT_DISK_FAILING,
    SMART_BIT_ERROR_LOG,
    SMART_BIT_PREFAIL_NOW,
    SMART_BIT_SELF_TEST_ERRORS,
    SmartDrive,
    SmartFacts,
)
from agent.facts.models import Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

# NVMe SMART / Health log, byte 0 (NVMe base specification, "Critical Warning").
_NVME_WARNINGS = (
    (0x01, CheckStatus.CRITICAL, "spare blocks below threshold"),
    (0x02, CheckStatus.WARNING, "temperature out of range"),
    (0x04, CheckStatus.CRITICAL, "reliability degraded by media errors"),
    (0x08, CheckStatus.CRITICAL, "switched to read-only"),
    (0x10, CheckStatus.CRITICAL, "volatile memory backup failed"),
    (0x20, CheckStatus.CRITICAL, "persistent memory region read-only"),
)


class DiskSmartThresholds(Thresholds):
    max_reallocated_sectors_warning: int = Field(default=0, ge=0)
    """Sectors the drive has swapped for spares; any at all is the first sign of wear."""
    max_reallocated_sectors_critical: int = Field(default=100, ge=0)
    max_pending_sectors_warning: int = Field(default=0, ge=0)
    """Sectors that could not be read and wait to be rewritten: data may already be lost."""
    max_pending_sectors_critical: int = Field(default=10, ge=0)
    max_uncorrectable_errors_warning: int = Field(default=0, ge=0)
    max_uncorrectable_errors_critical: int = Field(default=10, ge=0)
    max_nvme_percentage_used_warning: int = Field(default=80, ge=0, le=255)
    """The NVMe drive's own estimate of its rated write endurance used (100 = all of it)."""
    max_nvme_percentage_used_critical: int = Field(default=100, ge=0, le=255)
    max_nvme_media_errors_warning: int = Field(default=0, ge=0)
    max_nvme_media_errors_critical: int = Field(default=10, ge=0)
    warn_on_error_log: bool = False
    """Warn when the drive's error log holds entries; off because old, harmless ones persist."""

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        for name in (
            "reallocated_sectors",
            "pending_sectors",
            "uncorrectable_errors",
            "nvme_percentage_used",
            "nvme_media_errors",
        ):
            if getattr(self, f"max_{name}_warning") > getattr(self, f"max_{name}_critical"):
                raise ValueError(f"max_{name}_warning must not exceed max_{name}_critical")
        return self


class DiskSmart(Check[SmartFacts, DiskSmartThresholds]):
    id = "disk.smart"
    title = "Disk health (SMART)"
    category = Category.HARDWARE
    default_interval = timedelta(hours=1)
    remediation = (
        "The drive reports it is wearing out or failing. Back up the user's data now, then plan "
        "a drive replacement (hand over to L2 for the swap). Avoid heavy use until it is saved."
    )
    emits = (
        ValueSpec("drive", "", "the drive in the worst state (device name)"),
        ValueSpec("health", "", 'its overall SMART self-assessment: "passed", "failed", "unknown"'),
        ValueSpec("reallocated_sectors", "count", "sectors it replaced with spares (ATA, SCSI)"),
        ValueSpec("pending_sectors", "count", "unreadable sectors waiting to be rewritten (ATA)"),
        ValueSpec("uncorrectable_errors", "count", "errors it could not correct (ATA)"),
        ValueSpec("nvme_percentage_used", "%", "NVMe estimate of rated endurance used"),
        ValueSpec("nvme_media_errors", "count", "NVMe unrecovered data integrity errors"),
        ValueSpec("temperature_celsius", "°C", "its temperature"),
        ValueSpec("power_on_hours", "h", "hours it has been powered on"),
        ValueSpec("drives", "count", "drives whose SMART data was read"),
        ValueSpec("unreadable_drives", "count", "drives found whose SMART data could not be read"),
    )
    thresholds_type = DiskSmartThresholds

    def gather(
        self, source: FactSource, thresholds: DiskSmartThresholds
    ) -> SmartFacts | Unavailable:
        return source.smart()

    def evaluate(self, facts: SmartFacts, thresholds: DiskSmartThresholds) -> Outcome:
        unreadable = "; ".join(facts.errors)
        if not facts.drives:
            reason = f"no drive readable: {unreadable}" if unreadable else "no drive found"
            return Outcome(CheckStatus.UNKNOWN, reason)
        graded = [(drive, *_grade(drive, thresholds)) for drive in facts.drives]
        worst, status, reasons = max(graded, key=lambda g: (g[1], len(g[2])))
        if status is CheckStatus.OK:
            names = ", ".join(_name(drive) for drive in facts.drives)
            count = len(facts.drives)
            summary = f"{count} drive{'s' if count > 1 else ''} healthy: {names}"
        else:
            summary = f"{_name(worst)} {status.label}: {', '.join(reasons)}"
            others = [d for d, s, _ in graded if d is not worst and s is not CheckStatus.OK]
            if others:
                summary += f"; also {', '.join(_name(d) for d in others)} not healthy"
        if unreadable:
            # Drives behind some USB bridges never answer SMART: not knowing them must not hide
            # what the readable drives say, nor turn a healthy machine UNKNOWN forever.
            summary += f"; could not read {unreadable}"
        return Outcome(status, summary, _values(worst, len(facts.drives), len(facts.errors)))


def _grade(drive: SmartDrive, t: DiskSmartThresholds) -> tuple[CheckStatus, list[str]]:
    """The drive's status and the findings at that status."""
    findings: list[tuple[CheckStatus, str]] = []
    bits = drive.exit_status
    if drive.health_passed is False or bits & SMART_BIT_DISK_FAILING:
        findings.append((CheckStatus.CRITICAL, "SMART health check failed"))
    failing = drive.failing_attributes
    if failing:
        names = ", ".join(a.name or str(a.id) for a in failing)
        findings.append((CheckStatus.CRITICAL, f"attributes at their failure threshold: {names}"))
    elif bits & SMART_BIT_PREFAIL_NOW:
        findings.append((CheckStatus.CRITICAL, "attributes at their failure threshold"))
    for count, noun, warning, critical in (
        (
            drive.reallocated_sectors,
            "reallocated sectors",
            t.max_reallocated_sectors_warning,
            t.max_reallocated_sectors_critical,
        ),
        (
            drive.pending_sectors,
            "pending sectors",
            t.max_pending_sectors_warning,
            t.max_pending_sectors_critical,
        ),
        (
            drive.uncorrectable_errors,
            "uncorrectable errors",
            t.max_uncorrectable_errors_warning,
            t.max_uncorrectable_errors_critical,
        ),
        (
            drive.nvme_media_errors,
            "media errors",
            t.max_nvme_media_errors_warning,
            t.max_nvme_media_errors_critical,
        ),
    ):
        if count is not None:
            status = grade_max(count, warning, critical)
            if status is not CheckStatus.OK:
                limit = critical if status is CheckStatus.CRITICAL else warning
                findings.append((status, f"{count} {noun} (above {limit})"))
    if drive.nvme_percentage_used is not None:
        used = drive.nvme_percentage_used
        status = grade_max(
            used, t.max_nvme_percentage_used_warning, t.max_nvme_percentage_used_critical
        )
        if status is not CheckStatus.OK:
            limit = (
                t.max_nvme_percentage_used_critical
                if status is CheckStatus.CRITICAL
                else t.max_nvme_percentage_used_warning
            )
            findings.append((status, f"{used}% of rated endurance used (above {limit}%)"))
    for bit, status, words in _NVME_WARNINGS:
        if (drive.nvme_critical_warning or 0) & bit:
            findings.append((status, f"NVMe critical warning: {words}"))
    past = drive.failed_attributes_in_past
    if past:
        names = ", ".join(a.name or str(a.id) for a in past)
        findings.append((CheckStatus.WARNING, f"attributes failed in the past: {names}"))
    elif bits & SMART_BIT_ATTRIBUTE_PAST:
        findings.append((CheckStatus.WARNING, "attributes failed in the past"))
    if bits & SMART_BIT_SELF_TEST_ERRORS:
        findings.append((CheckStatus.WARNING, "a self-test failed"))
    if t.warn_on_error_log and bits & SMART_BIT_ERROR_LOG:
        findings.append((CheckStatus.WARNING, "errors in the drive's error log"))
    if not findings:
        return CheckStatus.OK, []
    worst = max(status for status, _ in findings)
    return worst, [words for status, words in findings if status is worst]


def _name(drive: SmartDrive) -> str:
    return f"{drive.device} ({drive.model})" if drive.model else drive.device


def _values(drive: SmartDrive, drives: int, unreadable: int) -> tuple[Measured, ...]:
    health = {True: "passed", False: "failed", None: "unknown"}[drive.health_passed]
    values = [Measured("drive", drive.device, ""), Measured("health", health, "")]
    optional: tuple[tuple[str, float | None, str], ...] = (
        ("reallocated_sectors", drive.reallocated_sectors, "count"),
        ("pending_sectors", drive.pending_sectors, "count"),
        ("uncorrectable_errors", drive.uncorrectable_errors, "count"),
        ("nvme_percentage_used", drive.nvme_percentage_used, "%"),
        ("nvme_media_errors", drive.nvme_media_errors, "count"),
        ("temperature_celsius", drive.temperature_celsius, "°C"),
        ("power_on_hours", drive.power_on_hours, "h"),
    )
    values.extend(
        Measured(name, value, unit) for name, value, unit in optional if value is not None
    )
    values.append(Measured("drives", drives, "count"))
    values.append(Measured("unreadable_drives", unreadable, "count"))
    return tuple(values)
