"""The disk usage history: bounded, spaced, persisted atomically, and forgiving of a bad file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agent.facts.hardware.history import HISTORY_FILE, DiskUsageHistory, decode, encode
from agent.facts.hardware.models import DiskUsageSample

GIB = 1024**3
HOUR = 3600.0


def test_samples_accumulate_per_mountpoint() -> None:
    history = DiskUsageHistory(None, min_spacing_s=0)
    history.record([("/", 10 * GIB, 100 * GIB), ("/home", 1 * GIB, 50 * GIB)], now=1000.0)
    kept = history.record([("/", 11 * GIB, 100 * GIB)], now=2000.0)
    assert kept == {
        "/": (
            DiskUsageSample(1000.0, 10 * GIB, 100 * GIB),
            DiskUsageSample(2000.0, 11 * GIB, 100 * GIB),
        )
    }
    assert set(history.samples()) == {"/", "/home"}


def test_a_sample_too_soon_is_returned_but_not_kept() -> None:
    history = DiskUsageHistory(None, min_spacing_s=900)
    history.record([("/", 10, 100)], now=0.0)
    kept = history.record([("/", 12, 100)], now=300.0)
    assert [s.used_bytes for s in kept["/"]] == [10, 12]
    assert [s.used_bytes for s in history.samples()["/"]] == [10]
    history.record([("/", 13, 100)], now=900.0)
    assert [s.used_bytes for s in history.samples()["/"]] == [10, 13]


def test_old_samples_and_samples_from_the_future_are_dropped() -> None:
    history = DiskUsageHistory(None, max_age_s=10 * HOUR, min_spacing_s=0)
    for hour in range(0, 12):
        history.record([("/", hour, 100)], now=hour * HOUR)
    assert history.samples()["/"][0].timestamp == 1 * HOUR
    # The clock was set back three hours: what looked recorded hours "later" cannot be trusted;
    # what is less than an hour ahead is kept, but the answer stays in time order.
    kept = history.record([("/", 99, 100)], now=8 * HOUR + 1)
    assert [s.timestamp for s in history.samples()["/"]][-2:] == [8 * HOUR, 9 * HOUR]
    assert [s.timestamp for s in kept["/"]][-2:] == [8 * HOUR, 8 * HOUR + 1]


def test_each_filesystem_keeps_at_most_max_samples() -> None:
    history = DiskUsageHistory(None, min_spacing_s=0, max_samples=5)
    for i in range(12):
        history.record([("/", i, 100)], now=float(i))
    assert [s.used_bytes for s in history.samples()["/"]] == [7, 8, 9, 10, 11]


def test_the_filesystems_seen_least_recently_are_dropped_beyond_the_bound() -> None:
    history = DiskUsageHistory(None, min_spacing_s=0, max_filesystems=2)
    history.record([("/media/usb1", 1, 10)], now=1.0)
    history.record([("/media/usb2", 1, 10)], now=2.0)
    history.record([("/", 1, 10)], now=3.0)
    assert set(history.samples()) == {"/media/usb2", "/"}


def test_the_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / HISTORY_FILE
    first = DiskUsageHistory(path, min_spacing_s=0)
    first.record([("/", 10, 100)], now=1000.0)
    first.record([("/", 20, 100)], now=2000.0)
    assert json.loads(path.read_text())["version"] == 1
    again = DiskUsageHistory(path, min_spacing_s=0)
    kept = again.record([("/", 30, 100)], now=3000.0)
    assert [s.used_bytes for s in kept["/"]] == [10, 20, 30]
    # Written atomically: no temporary file is left behind.
    assert [p.name for p in path.parent.iterdir()] == [HISTORY_FILE]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 99, "filesystems": {}}',
        '{"version": 1, "filesystems": {"/": [[1, 2]]}}',
        '{"version": 1, "filesystems": {"/": [["a", 2, 3]]}}',
        '{"version": 1, "filesystems": []}',
    ],
)
def test_a_corrupt_file_starts_over(tmp_path: Path, content: str) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_text(content)
    history = DiskUsageHistory(path, min_spacing_s=0)
    kept = history.record([("/", 10, 100)], now=1000.0)
    assert kept == {"/": (DiskUsageSample(1000.0, 10, 100),)}
    assert decode(json.loads(path.read_text())) == {"/": [DiskUsageSample(1000.0, 10, 100)]}


def test_an_unwritable_state_dir_keeps_the_history_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    history = DiskUsageHistory(blocker / HISTORY_FILE, min_spacing_s=0)
    history.record([("/", 10, 100)], now=1.0)
    kept = history.record([("/", 20, 100)], now=2.0)
    assert len(kept["/"]) == 2


def test_encode_and_decode_round_trip() -> None:
    samples = {"/": [DiskUsageSample(1.0, 10, 100)], "C:\\": [DiskUsageSample(2.0, 5, 50)]}
    assert decode(json.loads(json.dumps(encode(samples)))) == samples


def test_threads_recording_at_once_lose_nothing() -> None:
    history = DiskUsageHistory(None, min_spacing_s=0, max_samples=10_000)

    def record(offset: int) -> None:
        for i in range(200):
            history.record([(f"/fs{offset}", i, 1000)], now=float(i))

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(kept) == 200 for kept in history.samples().values())
