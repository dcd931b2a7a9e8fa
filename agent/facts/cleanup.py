"""Removing old files from a temp directory, without ever leaving it.

For the `clear_temp` remediation. Symbolic links are never followed and never removed (what
they point at stays where it is); subdirectories are entered only when they are real
directories on the same filesystem. Where the OS allows it, every step goes through directory
file descriptors opened with O_NOFOLLOW, so a directory swapped for a link mid-walk cannot
redirect the removal.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.facts.models import Unavailable

MAX_ERRORS_LISTED = 20


@dataclass(frozen=True)
class CleanupFacts:
    directory: str
    files_removed: int
    bytes_freed: int
    files_kept: int
    """Files newer than the age limit."""
    links_skipped: int
    errors: int
    error_samples: tuple[str, ...] = ()
    complete: bool = True
    stopped_because: str = ""


@dataclass
class _Tally:
    removed: int = 0
    freed: int = 0
    kept: int = 0
    links: int = 0
    errors: int = 0
    visited: int = 0
    stopped: str = ""

    def __post_init__(self) -> None:
        self.samples: list[str] = []

    def error(self, path: str, exc: OSError) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERRORS_LISTED:
            self.samples.append(f"{path}: {exc.strerror or exc}")


_FD_WALK = (
    hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
    and os.unlink in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
    and os.scandir in os.supports_fd
)


def remove_old_files(
    directory: str,
    older_than_s: float,
    max_entries: int,
    deadline: float,
    dry_run: bool = False,
    now: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CleanupFacts | Unavailable:
    """Remove regular files under `directory` last modified more than `older_than_s` ago."""
    cutoff = (time.time() if now is None else now) - older_than_s
    try:
        top = os.lstat(directory)
    except OSError as exc:
        return Unavailable(f"cannot read {directory}: {exc.strerror or exc}")
    if not stat.S_ISDIR(top.st_mode):
        return Unavailable(f"{directory} is not a directory (links are not followed)")
    tally = _Tally()
    limits = (max_entries, deadline, clock)
    if _FD_WALK:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            return Unavailable(f"cannot open {directory}: {exc.strerror or exc}")
        try:
            _walk_fd(fd, directory, top.st_dev, cutoff, dry_run, tally, limits)
        finally:
            os.close(fd)
    else:
        _walk_path(directory, top.st_dev, cutoff, dry_run, tally, limits)
    return CleanupFacts(
        directory=directory,
        files_removed=tally.removed,
        bytes_freed=tally.freed,
        files_kept=tally.kept,
        links_skipped=tally.links,
        errors=tally.errors,
        error_samples=tuple(tally.samples),
        complete=not tally.stopped,
        stopped_because=tally.stopped,
    )


def _over_limits(tally: _Tally, limits: tuple[int, float, Callable[[], float]]) -> bool:
    max_entries, deadline, clock = limits
    tally.visited += 1
    if tally.visited > max_entries:
        tally.stopped = f"visited {max_entries} entries"
    elif tally.visited % 256 == 0 and clock() > deadline:
        tally.stopped = "ran out of time"
    return bool(tally.stopped)


def _walk_fd(
    fd: int,
    path: str,
    device: int,
    cutoff: float,
    dry_run: bool,
    tally: _Tally,
    limits: tuple[int, float, Callable[[], float]],
) -> None:
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        if tally.stopped or _over_limits(tally, limits):
            return
        shown = os.path.join(path, name)
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            tally.error(shown, exc)
            continue
        if stat.S_ISLNK(info.st_mode):
            tally.links += 1
        elif stat.S_ISDIR(info.st_mode):
            if info.st_dev != device:
                continue
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                tally.error(shown, exc)
                continue
            try:
                _walk_fd(child, shown, device, cutoff, dry_run, tally, limits)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            if info.st_mtime >= cutoff:
                tally.kept += 1
                continue
            try:
                if not dry_run:
                    os.unlink(name, dir_fd=fd)
            except OSError as exc:
                tally.error(shown, exc)
                continue
            tally.removed += 1
            tally.freed += info.st_size


def _walk_path(
    path: str,
    device: int,
    cutoff: float,
    dry_run: bool,
    tally: _Tally,
    limits: tuple[int, float, Callable[[], float]],
) -> None:
    """The same walk by path, where the OS has no dir_fd calls (Windows)."""
    try:
        with os.scandir(path) as entries:
            found = list(entries)
    except OSError as exc:
        tally.error(path, exc)
        return
    for entry in found:
        if tally.stopped or _over_limits(tally, limits):
            return
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            tally.error(entry.path, exc)
            continue
        if entry.is_symlink() or getattr(entry, "is_junction", lambda: False)():
            tally.links += 1
        elif stat.S_ISDIR(info.st_mode):
            if info.st_dev == device:
                _walk_path(entry.path, device, cutoff, dry_run, tally, limits)
        elif stat.S_ISREG(info.st_mode):
            if info.st_mtime >= cutoff:
                tally.kept += 1
                continue
            try:
                if not dry_run:
                    os.unlink(entry.path)
            except OSError as exc:
                tally.error(entry.path, exc)
                continue
            tally.removed += 1
            tally.freed += info.st_size
