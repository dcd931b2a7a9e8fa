"""The agent's identity: the agent id and credential enrollment gave it, kept owner-only on disk."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

IDENTITY_FILE = "identity.json"


@dataclass(frozen=True)
class Identity:
    agent_id: str
    credential: str
    collector: str


def load_identity(state_dir: Path) -> Identity | None:
    try:
        data = json.loads((state_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
        return Identity(data["agent_id"], data["credential"], data["collector"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"identity file {state_dir / IDENTITY_FILE} is unreadable: {exc}"
        ) from exc


def save_identity(state_dir: Path, identity: Identity) -> None:
    """Write atomically, readable only by the owner: the credential is a secret."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / IDENTITY_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(identity), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def forget_identity(state_dir: Path) -> None:
    (state_dir / IDENTITY_FILE).unlink(missing_ok=True)
