"""Disk use by directory under a path: a bounded walk that never follows links or leaves the disk.

For the `largest_dirs` diagnostic. The walk stops at a number of entries and at a deadline, so
a huge tree costs a bounded time; what it skipped (other filesystems, unreadable directories,
the rest of the tree once a bound was hit) is reported, never silently left out.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.facts.models import Unavailable

MAX_SKIPPED_LISTED = 20


@dataclass(frozen=True)
class DirectoryUsage:
    path: str
    bytes: int
    """Space used by the files under it (allocated blocks where told); links not followed."""
    files: int
    depth: int
    """1 for a directory directly under the root."""


@dataclass(frozen=True)
class DiskUsageFacts:
    root: str
    total_bytes: int
    """Everything counted under the root, files directly in it included."""
    entries_visited: int
    directories: tuple[DirectoryUsage, ...]
    """The largest directories first."""
    complete: bool
    """False when the walk stopped at its entry or time bound: sizes are then lower bounds."""
    stopped_because: str = ""
    unreadable: int = 0
    other_filesystems: int = 0
    skipped: tuple[str, ...] = ()
    """Some of what was skipped, with why (at most MAX_SKIPPED_LISTED)."""


def _used_bytes(info: os.stat_result) -> int:
    blocks = getattr(info, "st_blocks", None)
    return int(blocks) * 512 if blocks is not None else info.st_size


def largest_directories(
    root: str,
    max_depth: int,
    top: int,
    max_entries: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> DiskUsageFacts | Unavailable:
    """The `top` largest directories at most `max_depth` levels under `root`.

    Deeper contents count toward their ancestor at `max_depth`. The walk stays on `root`'s
    filesystem and ends after `max_entries` entries or at `deadline` (of `clock`).
    """
    try:
        root_info = os.stat(root)
    except OSError as exc:
        return Unavailable(f"cannot read {root}: {exc.strerror or exc}")
    if not stat.S_ISDIR(root_info.st_mode):
        return Unavailable(f"{root} is not a directory")
    sizes: dict[str, list[int]] = {}  # path at depth <= max_depth -> [bytes, files, depth]
    total = visited = unreadable = other_fs = 0
    skipped: list[str] = []
    stopped = ""
    # (directory, depth, the directory at depth <= max_depth it counts toward, or None: root)
    stack: list[tuple[str, int, str | None]] = [(root, 0, None)]

    def skip(path: str, why: str) -> None:
        if len(skipped) < MAX_SKIPPED_LISTED:
            skipped.append(f"{path}: {why}")

    while stack and not stopped:
        directory, depth, owner = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError as exc:
            unreadable += 1
            skip(directory, exc.strerror or str(exc))
            continue
        with entries:
            for entry in entries:
                visited += 1
                if visited > max_entries:
                    stopped = f"visited {max_entries} entries"
                    break
                if visited % 256 == 0 and clock() > deadline:
                    stopped = "ran out of time"
                    break
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    unreadable += 1
                    skip(entry.path, exc.strerror or str(exc))
                    continue
                if stat.S_ISDIR(info.st_mode):
                    if info.st_dev != root_info.st_dev:
                        other_fs += 1
                        skip(entry.path, "another filesystem")
                        continue
                    child_owner = owner
                    if depth + 1 <= max_depth:
                        child_owner = entry.path
                        sizes[entry.path] = [0, 0, depth + 1]
                    stack.append((entry.path, depth + 1, child_owner))
                    continue
                used = _used_bytes(info)
                total += used
                if owner is not None:
                    counted = sizes[owner]
                    counted[0] += used
                    counted[1] += 1
    # A directory's size includes its subdirectories': add each to its ancestors in the table.
    rolled = {path: list(values) for path, values in sizes.items()}
    for path, (used, files, depth) in sizes.items():
        parent = os.path.dirname(path)
        for _ in range(depth - 1):
            if parent in rolled:
                rolled[parent][0] += used
                rolled[parent][1] += files
            parent = os.path.dirname(parent)
    ranked = sorted(rolled.items(), key=lambda item: item[1][0], reverse=True)[:top]
    return DiskUsageFacts(
        root=root,
        total_bytes=total,
        entries_visited=min(visited, max_entries),
        directories=tuple(DirectoryUsage(p, v[0], v[1], v[2]) for p, v in ranked),
        complete=not stopped,
        stopped_because=stopped,
        unreadable=unreadable,
        other_filesystems=other_fs,
        skipped=tuple(skipped),
    )
