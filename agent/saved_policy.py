"""The last policy the collector sent, kept on disk so an agent that starts offline follows it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from google.protobuf import json_format

from remdiag.files import write_atomic
from remdiag.v1 import common_pb2

log = logging.getLogger(__name__)

POLICY_FILE = "policy.json"
"""The Policy message in protobuf's JSON form: readable by whoever looks after the machine."""


def load_policy(state_dir: Path) -> common_pb2.Policy | None:
    """The saved policy, or None when there is none or it cannot be read (logged, not raised:
    the agent then runs on its local settings until the collector sends one)."""
    path = state_dir / POLICY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("saved policy %s is unreadable, ignored: %s", path, exc)
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return json_format.ParseDict(data, common_pb2.Policy())
    except (json_format.ParseError, ValueError, RecursionError) as exc:
        log.warning("saved policy %s is corrupt, ignored: %s", path, exc)
        return None


def save_policy(state_dir: Path, policy: common_pb2.Policy) -> None:
    """Replace the saved policy atomically: a crash leaves the old one or the new one."""
    text = json_format.MessageToJson(policy, sort_keys=True)
    write_atomic(state_dir / POLICY_FILE, text.encode("utf-8"), 0o600)
