"""Who this machine is: host name, a stable machine id, OS and architecture."""

from __future__ import annotations

import platform
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@dataclass(frozen=True)
class MachineFacts:
    hostname: str
    machine_id: str
    os: str
    os_version: str
    architecture: str


def machine_facts(state_dir: Path) -> MachineFacts:
    return MachineFacts(
        hostname=socket.gethostname(),
        machine_id=machine_id(state_dir),
        os=platform.system(),
        os_version=platform.release(),
        architecture=platform.machine(),
    )


def machine_id(state_dir: Path) -> str:
    """The OS's own id where it has one; otherwise one made once and kept in the state dir."""
    for path in MACHINE_ID_FILES:
        try:
            value = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if value:
            return value
    kept = state_dir / "machine-id"
    try:
        return kept.read_text(encoding="ascii").strip()
    except OSError:
        value = uuid.uuid4().hex
        state_dir.mkdir(parents=True, exist_ok=True)
        kept.write_text(value, encoding="ascii")
        return value
