"""glibc's heap, for long-running processes (the agent, the collector): fewer arenas, and free
pages handed back to the OS. Elsewhere (not Linux, not glibc) these do nothing."""

from __future__ import annotations

import contextlib
import ctypes
import sys

M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def limit_arenas(arenas: int) -> None:
    """glibc gives each thread its own heap arena; a mostly idle process then holds many
    half-empty arenas as resident memory."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Hand the heap's free pages back to the OS (malloc_trim). glibc keeps freed memory for
    reuse, so without it RSS stays at the high-water mark of every burst. ctypes releases the
    GIL for the call."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)
