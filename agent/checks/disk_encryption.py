"""security.disk_encryption: the system disk (and chosen volumes) are encrypted at rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, StringConstraints

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import Unavailable
from agent.facts.security.models import DiskEncryptionFacts, EncryptionState, VolumeEncryption
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

MountPath = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]

STATUS_OF_STATE = {
    EncryptionState.ENCRYPTED: CheckStatus.OK,
    EncryptionState.ENCRYPTING: CheckStatus.WARNING,
    EncryptionState.ENCRYPTION_PAUSED: CheckStatus.WARNING,
    EncryptionState.SUSPENDED: CheckStatus.WARNING,
    EncryptionState.PENDING: CheckStatus.WARNING,
    # Protection is already off while a disk is decrypted.
    EncryptionState.DECRYPTING: CheckStatus.CRITICAL,
    EncryptionState.NOT_ENCRYPTED: CheckStatus.CRITICAL,
}


class DiskEncryptionThresholds(Thresholds):
    mountpoints: tuple[MountPath, ...] = Field(default=(), max_length=16)
    """Volumes to judge besides the system disk: mount points, paths on them, or "D:"."""


class DiskEncryption(Check[DiskEncryptionFacts, DiskEncryptionThresholds]):
    id = "security.disk_encryption"
    title = "Disk encryption"
    category = Category.SECURITY
    default_interval = timedelta(hours=1)
    remediation = (
        "Keep the PC plugged in and let encryption finish. If it is off, turn it on: BitLocker "
        "on Windows (Settings > Privacy & security > Device encryption), FileVault on a Mac; on "
        "Linux, encryption is chosen at install time, so plan a reinstall with a technician. "
        "If BitLocker is suspended, resume it (Control Panel > BitLocker > Resume protection)."
    )
    emits = (
        ValueSpec("volumes_encrypted", "count", "volumes fully encrypted and protected"),
        ValueSpec("volumes_not_encrypted", "count", "volumes not encrypted or being decrypted"),
        ValueSpec("volumes_in_progress", "count", "volumes encrypting, paused or suspended"),
        ValueSpec("system_state", "", "encryption state of the system disk"),
        ValueSpec("min_percent_encrypted", "%", "lowest share encrypted, where the OS tells"),
    )
    thresholds_type = DiskEncryptionThresholds

    def gather(
        self, source: FactSource, thresholds: DiskEncryptionThresholds
    ) -> DiskEncryptionFacts | Unavailable:
        return source.disk_encryption(thresholds.mountpoints)

    def evaluate(self, facts: DiskEncryptionFacts, thresholds: DiskEncryptionThresholds) -> Outcome:
        unreadable = "; ".join(facts.errors)
        if not facts.volumes:
            reason = f"could not judge {unreadable}" if unreadable else "no volume found"
            return Outcome(CheckStatus.UNKNOWN, reason)
        judged = [(STATUS_OF_STATE[v.state], v) for v in facts.volumes]
        status = max(s for s, _ in judged)
        by_status = {s: [v for t, v in judged if t is s] for s in CheckStatus}
        values = [
            Measured("volumes_encrypted", len(by_status[CheckStatus.OK]), "count"),
            Measured("volumes_not_encrypted", len(by_status[CheckStatus.CRITICAL]), "count"),
            Measured("volumes_in_progress", len(by_status[CheckStatus.WARNING]), "count"),
        ]
        system = next((v for v in facts.volumes if v.system), None)
        if system is not None:
            values.append(Measured("system_state", system.state.value, ""))
        percents = [
            v.percent_encrypted
            for _, v in judged
            if v.percent_encrypted is not None and v.state is not EncryptionState.ENCRYPTED
        ]
        if percents:
            values.append(Measured("min_percent_encrypted", min(percents), "%"))
        if status is CheckStatus.OK:
            summary = "encrypted: " + ", ".join(_describe(v) for v in facts.volumes)
        else:
            summary = ", ".join(_describe(v) for s, v in judged if s is status)
        if unreadable:
            summary += f"; could not judge {unreadable}"
            # A volume we were asked about and could not judge is not known to be encrypted.
            status = CheckStatus.UNKNOWN if status is CheckStatus.OK else status
        return Outcome(status, summary, tuple(values))


def _describe(volume: VolumeEncryption) -> str:
    where = volume.mountpoint + (" (system disk)" if volume.system else "")
    if volume.state is EncryptionState.ENCRYPTED:
        return f"{where} {volume.method}".rstrip()
    text = f"{where} {volume.state.value}"
    if volume.percent_encrypted is not None and volume.state in (
        EncryptionState.ENCRYPTING,
        EncryptionState.ENCRYPTION_PAUSED,
        EncryptionState.DECRYPTING,
    ):
        text += f" ({volume.percent_encrypted:g}% encrypted)"
    return text
