"""Running an OS tool or reading an OS file for a fact: bounded, no shell, never raising.

Every fact that needs `smartctl`, `systemctl`, `dpkg-query`, a file in /sys or /proc, ... goes
through here, so a missing tool, a denied permission or a hung command becomes
Unavailable(reason) the same way everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.facts.models import Unavailable

DEFAULT_TIMEOUT_S = 10.0
MAX_OUTPUT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CommandOutput:
    returncode: int
    stdout: str
    stderr: str


def run_command(
    argv: Sequence[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    ok_codes: Sequence[int] = (0,),
) -> CommandOutput | Unavailable:
    """Run `argv` (no shell) and return its output, or Unavailable saying why not.

    `ok_codes` are the exit codes that still carry a usable answer (smartctl uses a bit mask,
    `systemctl is-active` exits 3 for an inactive unit, ...).
    """
    program = argv[0]
    if shutil.which(program) is None:
        return Unavailable(f"{program} is not installed")
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
            # A stable, parseable language for tools that translate their output.
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
    except subprocess.TimeoutExpired:
        return Unavailable(f"{program} did not answer within {timeout_s:g} s")
    except OSError as exc:
        return Unavailable(f"cannot run {program}: {exc.strerror or exc}")
    stdout = done.stdout[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")
    stderr = done.stderr[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")
    if done.returncode not in ok_codes:
        detail = (stderr.strip() or stdout.strip()).splitlines()
        why = detail[0] if detail else "no output"
        return Unavailable(f"{program} exited with {done.returncode}: {why}")
    return CommandOutput(done.returncode, stdout, stderr)


READ_PIECE_BYTES = 1024 * 1024


def read_text(path: str | Path, limit: int = MAX_OUTPUT_BYTES) -> str | Unavailable:
    """The text of an OS file (/proc, /sys, /etc, ...), or Unavailable saying why not."""
    try:
        with open(path, "rb") as handle:
            # In pieces: read(limit) allocates `limit` bytes up front, however small the file
            # (256 MiB for dpkg's status), and /proc files do not say their size.
            pieces: list[bytes] = []
            left = limit
            while left > 0 and (piece := handle.read(min(READ_PIECE_BYTES, left))):
                pieces.append(piece)
                left -= len(piece)
            return b"".join(pieces).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return Unavailable(f"{path} does not exist")
    except PermissionError:
        return Unavailable(f"no permission to read {path}")
    except OSError as exc:
        return Unavailable(f"cannot read {path}: {exc.strerror or exc}")
