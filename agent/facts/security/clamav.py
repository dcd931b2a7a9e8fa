"""ClamAV presence and the age of its signature database, wherever it is installed.

Presence is told by its programs and databases, not guessed: nothing is scanned or run, and the
process list is only read when a ClamAV program is installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from agent.facts.security.models import AntivirusProduct

PROGRAMS = ("clamd", "freshclam", "clamscan", "clamdscan", "clamonacc")
DAEMONS = frozenset({"clamd", "freshclam", "clamonacc"})
DATABASE_DIRS = (
    "/var/lib/clamav",  # Debian, Ubuntu, Fedora, RHEL (EPEL), Arch
    "/var/clamav",
    "/usr/local/share/clamav",  # built from source
    "/opt/homebrew/var/lib/clamav",  # Homebrew on Apple silicon
    "/usr/local/var/lib/clamav",  # Homebrew on Intel
)
DATABASE_SUFFIXES = (".cvd", ".cld")
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class DatabaseFile:
    path: str
    mtime: float


def describe(
    programs: Sequence[str],
    running: Iterable[str],
    databases: Sequence[DatabaseFile],
    now: float,
) -> AntivirusProduct | None:
    """What is known about ClamAV from its installed programs, running daemons and database
    files; None when none of them is there. Pure, so it is tested on recorded findings."""
    if not programs and not databases:
        return None
    daemons = sorted(set(running) & DAEMONS)
    parts = [f"programs: {', '.join(programs)}" if programs else "no ClamAV program on PATH"]
    parts.append(f"running: {', '.join(daemons)}" if daemons else "no ClamAV daemon running")
    updated: datetime | None = None
    age: float | None = None
    if databases:
        newest = max(databases, key=lambda db: db.mtime)
        updated = datetime.fromtimestamp(newest.mtime, UTC)
        age = max(0.0, (now - newest.mtime) / DAY_SECONDS)
        parts.append(f"newest database {os.path.basename(newest.path)}")
    else:
        parts.append("no signature database found")
    return AntivirusProduct(
        "ClamAV",
        "ClamAV",
        # clamd (or clamonacc) running is a scanner on duty; the programs alone scan on demand.
        enabled=bool({"clamd", "clamonacc"} & set(daemons)) or None,
        up_to_date=None,
        definitions_updated=updated,
        definitions_age_days=age,
        detail="; ".join(parts),
    )


def database_files(directories: Sequence[str] = DATABASE_DIRS) -> tuple[DatabaseFile, ...]:
    found = []
    for directory in directories:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(DATABASE_SUFFIXES):
                try:
                    found.append(DatabaseFile(entry.path, entry.stat().st_mtime))
                except OSError:
                    continue
    return tuple(found)


def running_programs(names: Iterable[str] = DAEMONS) -> tuple[str, ...]:
    """Which of `names` are running now (process names; no command lines are read)."""
    wanted = set(names)
    found: set[str] = set()
    try:
        for process in psutil.process_iter(["name"]):
            name = process.info.get("name")
            if name in wanted:
                found.add(name)
    except (OSError, psutil.Error):
        pass  # the answer is then "not seen running", which the detail says
    return tuple(sorted(found))


def clamav(now: float) -> AntivirusProduct | None:
    """ClamAV on this machine, or None when neither its programs nor its databases exist."""
    # clamd lives in /usr/sbin, which a service's PATH may leave out.
    search = os.pathsep.join((os.environ.get("PATH", os.defpath), "/usr/sbin", "/usr/local/sbin"))
    programs = tuple(p for p in PROGRAMS if shutil.which(p, path=search) is not None)
    databases = database_files()
    if not programs and not databases:
        return None  # skip the process list: nothing to find there
    return describe(programs, running_programs(), databases, now)
