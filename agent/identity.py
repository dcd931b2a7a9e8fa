"""The agent's identity: agent id, credential and (with TLS) its key, certificate and pinned CA,
kept owner-only on disk (directory 0700, files 0600, each written atomically)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from remdiag.files import write_atomic

IDENTITY_FILE = "identity.json"
CA_FILE = "ca.pem"
"""The collector's CA, pinned at enrollment: kept when the identity is forgotten."""
_OPTIONAL = ("certificate_pem", "key_pem", "server_name")


@dataclass(frozen=True)
class Identity:
    agent_id: str
    credential: str = field(repr=False)
    collector: str
    certificate_pem: str = ""
    """With TLS: the client certificate the collector's CA signed (CN = agent id)."""
    key_pem: str = field(default="", repr=False)
    """With TLS: the agent's private key. It never leaves this machine."""
    server_name: str = ""
    """Name the collector's certificate is checked against, when not the address's host."""

    @property
    def has_certificate(self) -> bool:
        return bool(self.certificate_pem and self.key_pem)


def load_identity(state_dir: Path) -> Identity | None:
    try:
        data = json.loads((state_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
        optional = {k: data[k] for k in _OPTIONAL if k in data}
        if not all(isinstance(v, str) for v in optional.values()):
            raise TypeError("certificate, key and server name must be strings")
        return Identity(data["agent_id"], data["credential"], data["collector"], **optional)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"identity file {state_dir / IDENTITY_FILE} is unreadable: {exc}"
        ) from exc


def save_identity(state_dir: Path, identity: Identity) -> None:
    """Write atomically, readable only by the owner: the credential and key are secrets."""
    private_dir(state_dir)
    write_private(state_dir / IDENTITY_FILE, json.dumps(asdict(identity)).encode())


def forget_identity(state_dir: Path) -> None:
    """Drop the credential, key and certificate; the pinned CA stays for the next enrollment."""
    (state_dir / IDENTITY_FILE).unlink(missing_ok=True)


def load_pinned_ca(state_dir: Path) -> bytes | None:
    try:
        return (state_dir / CA_FILE).read_bytes()
    except FileNotFoundError:
        return None


def pin_ca(state_dir: Path, ca_pem: bytes) -> None:
    private_dir(state_dir)
    write_private(state_dir / CA_FILE, ca_pem)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours to change: the files stay 0600 anyway
        os.chmod(path, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, readable only by the owner."""
    write_atomic(path, data, 0o600)
