"""remdiag.heap: free heap pages go back to the OS (Linux, glibc: this machine)."""

from __future__ import annotations

import gc

import psutil

from remdiag import heap

MIB = 1024 * 1024


def test_trim_hands_back_the_pages_a_freed_burst_left_resident() -> None:
    process = psutil.Process()
    burst = [bytes(1000) + bytes([n % 256]) for n in range(200_000)]  # about 200 MiB
    pinned = burst[::200]  # live blocks across the heap: it cannot simply shrink from the top
    del burst
    gc.collect()
    resident = process.memory_info().rss
    heap.trim()
    assert process.memory_info().rss < resident - 100 * MIB
    assert len(pinned) == 1000

