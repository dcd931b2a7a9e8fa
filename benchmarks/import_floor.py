"""What the agent's building blocks cost in resident memory before any remdiag code runs.

    .venv/bin/python benchmarks/import_floor.py

Imports, in the order the agent loads them, each in the same fresh process, and prints the
RSS each adds: the floor under agent_footprint.py's steady RSS.
"""

from __future__ import annotations

import importlib

import psutil

STEPS = (
    ("asyncio (with ssl)", "asyncio"),
    ("grpc", "grpc"),
    ("protobuf + generated contract", "remdiag.v1.agent_pb2_grpc"),
    ("pydantic", "pydantic.main"),
    ("pydantic-settings", "pydantic_settings"),
    ("APScheduler", "apscheduler.schedulers.asyncio"),
    ("click", "click"),
    ("remdiag agent (facts, 26 checks, transport)", "agent.app"),
    ("remdiag agent CLI", "agent.cli"),
)


def main() -> None:
    process = psutil.Process()
    start = last = process.memory_info().rss / 1e6
    print(f"{'python interpreter':45s} {start:6.1f} MB")
    for label, module in STEPS:
        importlib.import_module(module)
        now = process.memory_info().rss / 1e6
        print(f"{label:45s} +{now - last:5.1f} MB  = {now:5.1f} MB")
        last = now


if __name__ == "__main__":
    main()
