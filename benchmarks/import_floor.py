"""What the agent's building blocks cost in resident memory before any remdiag code runs.

    .venv/bin/python benchmarks/import_floor.py

Loads, in the order the agent loads them, each in the same fresh process, and prints the RSS
each adds: the floor under agent_footprint.py's steady RSS. On Linux it also splits what each
adds into anonymous memory (the process's own: objects, code, heaps) and file-backed pages
(shared libraries' code, which RSS counts although every process using the library shares it).

A step does the first-use work the agent does anyway (pydantic builds a model, which loads its
plugin machinery and the standard library modules that needs), so a later step is charged only
for what it adds: this is the memory the agent would save without that step's package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

SMAPS_ROLLUP = Path("/proc/self/smaps_rollup")


def memory_mb() -> tuple[float, float | None]:
    """(RSS, anonymous part of it or None where /proc cannot tell) in MB."""
    if SMAPS_ROLLUP.exists():
        fields = {}
        for line in SMAPS_ROLLUP.read_text(encoding="ascii").splitlines()[1:]:
            name, value, *_ = line.split()
            fields[name.rstrip(":")] = int(value) * 1024 / 1e6
        return fields["Rss"], fields["Anonymous"]
    import psutil  # elsewhere the first figure includes psutil

    return psutil.Process().memory_info().rss / 1e6, None


def first_model() -> None:
    """What the agent's first model costs: pydantic loads its schema builder and plugins."""
    from pydantic import BaseModel, Field

    class Thresholds(BaseModel):
        max_used_percent: float = Field(90, ge=0, le=100)
        paths: tuple[str, ...] = ()

    Thresholds(max_used_percent=50)


def modules(*names: str) -> Callable[[], None]:
    def load() -> None:
        for name in names:
            importlib.import_module(name)

    return load


STEPS = (
    ("psutil", modules("psutil")),
    ("asyncio (with ssl)", modules("asyncio")),
    ("grpc (with grpc.aio)", modules("grpc", "grpc.aio")),
    (
        "protobuf + generated contract + json_format",
        modules("remdiag.v1.agent_pb2_grpc", "google.protobuf.json_format"),
    ),
    ("pydantic", modules("pydantic.main")),
    ("pydantic: first model (schema, plugins)", first_model),
    ("pydantic-settings", modules("pydantic_settings")),
    ("APScheduler", modules("apscheduler.schedulers.asyncio")),
    ("click", modules("click")),
    ("sqlite3", modules("sqlite3")),
    ("remdiag agent (facts, 26 checks, transport)", modules("agent.app")),
    ("remdiag agent CLI", modules("agent.cli")),
)


def show(label: str, rss: float, anon: float | None, added: str) -> None:
    split = f"   anonymous {anon:+5.1f}, file-backed {rss - anon:+5.1f}" if anon is not None else ""
    print(f"{label:45s} {added}{split}")


def main() -> None:
    rss, anon = memory_mb()
    show(f"python interpreter ({len(sys.modules)} modules)", rss, anon, f"{rss:6.1f} MB{'':11s}")
    for label, load in STEPS:
        load()
        now, now_anon = memory_mb()
        added = None if anon is None or now_anon is None else now_anon - anon
        show(label, now - rss, added, f"+{now - rss:5.1f} MB = {now:5.1f} MB")
        rss, anon = now, now_anon
    print(f"{len(sys.modules)} modules loaded")


if __name__ == "__main__":
    main()
