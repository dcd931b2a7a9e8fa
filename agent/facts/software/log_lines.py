"""Recent error lines of the system log, bounded: journald where it keeps journals, else the
syslog file (keyword match, as plain syslog records no level). Linux only for now; other
systems say so. Parsers are pure and tested on recorded outputs."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.facts.command import run_command
from agent.facts.models import Unavailable

MAX_MESSAGE = 500
SYSLOG_TAIL_BYTES = 4 * 1024 * 1024
_PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


@dataclass(frozen=True)
class LogLine:
    at: str
    """ISO 8601 time, or the syslog file's own stamp."""
    source: str
    """The unit or program that logged it."""
    priority: str
    message: str


@dataclass(frozen=True)
class LogLinesFacts:
    source: str
    lines: tuple[LogLine, ...]
    """Newest last, at most the number asked for (the newest ones)."""
    truncated: bool


def parse_journal_json(text: str) -> tuple[LogLine, ...]:
    """Entries of `journalctl -o json` output, one JSON object per line."""
    found = []
    for raw in text.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
            message = bytes(b for b in message if isinstance(b, int)).decode(errors="replace")
        try:
            at = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC).isoformat()
        except (KeyError, ValueError, TypeError):
            at = ""
        priority = str(entry.get("PRIORITY", ""))
        found.append(
            LogLine(
                at=at,
                source=str(entry.get("_SYSTEMD_UNIT") or entry.get("SYSLOG_IDENTIFIER") or ""),
                priority=_PRIORITIES[int(priority)] if priority.isdigit() and int(priority) < 8
                else priority,
                message=str(message)[:MAX_MESSAGE],
            )
        )  # fmt: skip
    return tuple(found)


_SYSLOG_ERROR = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<program>[^:\s]+):? (?P<message>.*"
    r"\b(?:error|fatal|critical|crit|panic|segfault|emerg|alert)\b.*)$",
    re.MULTILINE | re.IGNORECASE,
)


def parse_syslog_errors(text: str, since: float, now: float) -> tuple[LogLine, ...]:
    """Lines of a syslog file that name an error, logged at or after `since`."""
    found = []
    year = time.localtime(now).tm_year
    for match in _SYSLOG_ERROR.finditer(text):
        stamp = match["stamp"]
        try:
            if stamp[0].isdigit():
                at = datetime.fromisoformat(stamp).timestamp()
            else:
                at = time.mktime(time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S"))
                if at > now + 86400:
                    at = time.mktime(time.strptime(f"{year - 1} {stamp}", "%Y %b %d %H:%M:%S"))
        except ValueError:
            continue
        if at >= since:
            program = match["program"].split("[")[0]
            found.append(LogLine(stamp, program, "error?", match["message"][:MAX_MESSAGE]))
    return tuple(found)


JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")
SYSLOG_FILES = ("/var/log/syslog", "/var/log/messages")


def recent_errors(
    since_s: float,
    max_lines: int,
    journal_dirs: Sequence[str] = JOURNAL_DIRS,
    syslog_files: Sequence[str] = SYSLOG_FILES,
) -> LogLinesFacts | Unavailable:
    """Error-level entries of the last `since_s` seconds, the newest `max_lines` of them."""
    if not sys.platform.startswith("linux"):
        return Unavailable(f"reading the system log is not supported on {sys.platform} yet")
    now = time.time()
    since = now - since_s
    reasons = []
    if any(os.path.isdir(d) for d in journal_dirs):
        done = run_command(
            [
                *("journalctl", "--priority=err", f"--since=@{int(since)}", "--output=json"),
                *(f"--lines={max_lines + 1}", "--no-pager", "-q"),
            ],
            timeout_s=20,
        )
        if isinstance(done, Unavailable):
            reasons.append(done.reason)
        else:
            lines = parse_journal_json(done.stdout)
            return LogLinesFacts("journald", lines[-max_lines:], len(lines) > max_lines)
    else:
        reasons.append(f"no journal ({' and '.join(journal_dirs)} do not exist)")
    for path in syslog_files:
        if not os.access(path, os.R_OK):
            continue
        try:
            with open(path, "rb") as handle:
                start = max(0, handle.seek(0, os.SEEK_END) - SYSLOG_TAIL_BYTES)
                handle.seek(start)
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            reasons.append(f"cannot read {path}: {exc.strerror or exc}")
            continue
        if start:
            text = text.partition("\n")[2]  # the first line is cut short
        lines = parse_syslog_errors(text, since, now)
        return LogLinesFacts(f"{path} (keyword match)", lines[-max_lines:], len(lines) > max_lines)
    reasons.append(f"{' and '.join(syslog_files)} do not exist or are not readable")
    return Unavailable("no readable system log: " + "; ".join(reasons))
