"""Typed, frozen security facts: firewall, antivirus, disk encryption, TLS certificates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class FirewallProfile:
    """One Windows Firewall profile (Domain, Private, Public)."""

    name: str
    enabled: bool
    blocks_inbound: bool
    """True when inbound connections not allowed by a rule are blocked (the default action)."""


@dataclass(frozen=True)
class FirewallFacts:
    backend: str
    """Who answered: "ufw", "nftables", "iptables", "iptables-legacy", "Windows Firewall", ..."""
    enabled: bool
    filters_inbound: bool
    """True when traffic coming in is dropped or rejected by default or by some rule."""
    detail: str
    """What the backend said, in words: "default deny (incoming)", "input policy drop", ..."""
    profiles: tuple[FirewallProfile, ...] = ()
    others: tuple[str, ...] = ()
    """What the other backends asked said, e.g. "ufw: inactive", "nft is not installed"."""


@dataclass(frozen=True)
class AntivirusProduct:
    name: str
    source: str
    """Where it was found: "Security Center", "Defender", "ClamAV", "XProtect", "installed"."""
    enabled: bool | None
    """None where the product has no on/off state we can read (an on-demand scanner)."""
    up_to_date: bool | None
    """The product's own verdict on its definitions, where it gives one."""
    definitions_updated: datetime | None = None
    definitions_age_days: float | None = None
    version: str = ""
    detail: str = ""


@dataclass(frozen=True)
class AntivirusFacts:
    products: tuple[AntivirusProduct, ...]
    complete: bool
    """True when the OS itself lists every installed product (Windows Security Center), so an
    empty list means none; False where only known scanners were looked for."""
    looked_for: tuple[str, ...] = ()
    """What was looked for, or could not be asked, in words (for an honest "absent")."""


class EncryptionState(StrEnum):
    ENCRYPTED = "encrypted"
    NOT_ENCRYPTED = "not encrypted"
    ENCRYPTING = "encryption in progress"
    ENCRYPTION_PAUSED = "encryption paused"
    SUSPENDED = "encrypted, protection suspended"
    DECRYPTING = "decryption in progress"
    PENDING = "encryption pending"
    """FileVault's deferred enablement: turned on, starts at the next log-in."""


@dataclass(frozen=True)
class VolumeEncryption:
    mountpoint: str
    """The mount point (or drive, "C:") judged; for a path asked about, the mount holding it."""
    device: str
    state: EncryptionState
    method: str
    """"LUKS", "dm-crypt", "BitLocker XTS-AES 128", "FileVault", or "" when not encrypted."""
    percent_encrypted: float | None = None
    system: bool = False
    """True for the disk the OS boots from."""
    detail: str = ""


@dataclass(frozen=True)
class DiskEncryptionFacts:
    volumes: tuple[VolumeEncryption, ...]
    errors: tuple[str, ...] = ()
    """Mount points that could not be judged, with why ("/data: on tmpfs, not a block device")."""


@dataclass(frozen=True)
class CertificateFacts:
    endpoint: str
    """As configured: "host:port"."""
    host: str
    port: int
    subject: str = ""
    issuer: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    days_left: float | None = None
    """Days until not_after when it was read; negative once expired."""
    verified: bool = False
    """True when the normal verification (system trust store and host name) succeeded."""
    verify_error: str | None = None
    """Why verification failed ("self-signed certificate", "Hostname mismatch, ...")."""
    error: str | None = None
    """Why no certificate could be read at all (refused, timed out, not TLS); None otherwise."""


@dataclass(frozen=True)
class CertificatesFacts:
    certificates: tuple[CertificateFacts, ...]
