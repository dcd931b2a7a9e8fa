"""security.disk_encryption judged on recorded volumes (LUKS, BitLocker, FileVault)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.disk_encryption import DiskEncryption
from agent.facts.models import Unavailable
from agent.facts.security.models import DiskEncryptionFacts, EncryptionState, VolumeEncryption
from remdiag.vocabulary import CheckStatus

CHECK = DiskEncryption()
DEFAULTS = CHECK.thresholds()

LUKS_ROOT = VolumeEncryption(
    "/", "ubuntu--vg-ubuntu--lv", EncryptionState.ENCRYPTED, "LUKS", 100.0, True
)
PLAIN_DATA = VolumeEncryption("/data", "sda1", EncryptionState.NOT_ENCRYPTED, "")
PLAIN_ROOT = VolumeEncryption("/", "vda", EncryptionState.NOT_ENCRYPTED, "", system=True)
BITLOCKER_ENCRYPTING = VolumeEncryption(
    "C:", "C:", EncryptionState.ENCRYPTING, "BitLocker XTS-AES 128", 42.7, True
)
BITLOCKER_SUSPENDED = VolumeEncryption(
    "C:", "C:", EncryptionState.SUSPENDED, "BitLocker XTS-AES 128", 100.0, True
)


def volumes(*found: VolumeEncryption, errors: tuple[str, ...] = ()) -> DiskEncryptionFacts:
    return DiskEncryptionFacts(found, errors)


RECORDED = [
    volumes(LUKS_ROOT),  # OK
    volumes(BITLOCKER_ENCRYPTING),  # WARNING
    volumes(PLAIN_ROOT),  # CRITICAL
    volumes(errors=("/: overlay filesystem from overlay",)),  # UNKNOWN
]


def test_encrypted_system_disk_is_ok() -> None:
    outcome = CHECK.evaluate(volumes(LUKS_ROOT), DEFAULTS)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == "encrypted: / (system disk) LUKS"
    assert {v.name: v.value for v in outcome.values} == {
        "volumes_encrypted": 1,
        "volumes_not_encrypted": 0,
        "volumes_in_progress": 0,
        "system_state": "encrypted",
    }


def test_unencrypted_system_disk_is_critical() -> None:
    outcome = CHECK.evaluate(volumes(PLAIN_ROOT), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "/ (system disk) not encrypted"


def test_an_unencrypted_configured_volume_is_critical_and_named() -> None:
    outcome = CHECK.evaluate(volumes(LUKS_ROOT, PLAIN_DATA), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "/data not encrypted"


def test_encryption_in_progress_warns_with_the_share_done() -> None:
    outcome = CHECK.evaluate(volumes(BITLOCKER_ENCRYPTING), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "C: (system disk) encryption in progress (42.7% encrypted)"
    assert {v.name: v.value for v in outcome.values}["min_percent_encrypted"] == 42.7


def test_suspended_bitlocker_warns() -> None:
    outcome = CHECK.evaluate(volumes(BITLOCKER_SUSPENDED), DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "C: (system disk) encrypted, protection suspended"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (EncryptionState.ENCRYPTION_PAUSED, CheckStatus.WARNING),
        (EncryptionState.PENDING, CheckStatus.WARNING),
        (EncryptionState.DECRYPTING, CheckStatus.CRITICAL),
    ],
)
def test_other_states(state: EncryptionState, status: CheckStatus) -> None:
    volume = VolumeEncryption("/", "", state, "FileVault", 80.0, True)
    assert CHECK.evaluate(volumes(volume), DEFAULTS).status is status


def test_nothing_judged_is_unknown_with_the_reasons() -> None:
    why = "/: overlay filesystem from overlay, on no block device lsblk lists"
    outcome = CHECK.evaluate(volumes(errors=(why,)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not judge {why}"
    assert CHECK.evaluate(volumes(), DEFAULTS).summary == "no volume found"


def test_a_volume_that_could_not_be_judged_beside_encrypted_ones_is_unknown() -> None:
    outcome = CHECK.evaluate(volumes(LUKS_ROOT, errors=("/mnt/nas: cifs",)), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary.endswith("; could not judge /mnt/nas: cifs")


def test_an_unjudged_volume_does_not_hide_an_unencrypted_one() -> None:
    outcome = CHECK.evaluate(volumes(PLAIN_ROOT, errors=("/mnt/nas: cifs",)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "manage-bde: An attempt to access a required resource was denied."
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


@pytest.mark.parametrize(
    "overrides",
    [{"mountpoints": ["/"] * 17}, {"mountpoints": [""]}, {"paths": ["/"]}],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
