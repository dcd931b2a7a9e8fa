"""read_text: an OS file's text up to a limit, read in pieces, or Unavailable saying why."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from agent.facts.command import READ_PIECE_BYTES, read_text
from agent.facts.models import Unavailable


def test_reads_the_whole_file_across_pieces_and_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "status"
    text = "Package: x\n" * (READ_PIECE_BYTES // 5)  # a few pieces long
    path.write_text(text)
    assert read_text(path, limit=10 * READ_PIECE_BYTES) == text
    assert read_text(path, limit=READ_PIECE_BYTES + 3) == text[: READ_PIECE_BYTES + 3]


def test_a_large_limit_does_not_allocate_it(tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_text("Package: x\n")
    tracemalloc.start()
    try:
        assert read_text(path, limit=256 * 1024 * 1024) == "Package: x\n"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * READ_PIECE_BYTES


def test_proc_files_which_report_no_size_are_read(tmp_path: Path) -> None:
    meminfo = read_text("/proc/meminfo")
    assert isinstance(meminfo, str) and meminfo.startswith("MemTotal:")


def test_a_missing_file_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    missing = read_text(tmp_path / "nope")
    assert isinstance(missing, Unavailable) and "does not exist" in str(missing.reason)
