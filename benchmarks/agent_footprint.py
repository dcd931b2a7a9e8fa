"""One agent's footprint: CPU time of a full cycle of every check, steady RSS, average CPU%.

    .venv/bin/python -m benchmarks.agent_footprint [--cycles 20] [--minutes 10]

Part 1 runs every registered check in this process, `--cycles` times after one warm-up
cycle, and reports the CPU time (this process's threads plus any child processes such as
smartctl) per cycle. Part 2 starts a collector and a real `remdiag-agent run` as separate
processes with the default schedule and samples the agent's RSS and CPU for `--minutes`.
Network checks are aimed at loopback: the benchmark sends no traffic off this machine.
Targets (issue 4): a full cycle <= 150 ms CPU; steady RSS <= 45 MB.

Besides RSS it prints USS (pages no other process maps), PSS (shared pages divided among the
processes sharing them) and, on Linux, RSS split into anonymous memory (the agent's own
objects, code and heaps) and file-backed pages (shared libraries' code: libpython, grpc's
extension, libcrypto, ...), and the agent's thread count.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.checks.registry import CHECKS
from agent.config import AgentSettings
from agent.facts.live import LiveFacts
from agent.plan import build_plan
from agent.runner import run_check
from remdiag.configfile import load_settings

LOOPBACK_AGENT_CONFIG = """
[checks."network.gateway"]
thresholds = { target = "127.0.0.1" }
[checks."network.dns"]
thresholds = { names = ["localhost"] }
"""
CYCLE_TARGET_MS = 150.0
RSS_TARGET_MB = 45.0


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def full_cycle_cpu_ms(config: Path, state_dir: Path, cycles: int) -> list[float]:
    settings = load_settings(AgentSettings, config)
    plan = build_plan(CHECKS, settings.checks)
    source = LiveFacts(state_dir=state_dir)
    for planned in plan.checks:  # warm-up: imports, caches, first samples
        run_check(planned, source)
    samples = []
    for _ in range(cycles):
        before = cpu_seconds()
        for planned in plan.checks:
            run_check(planned, source)
        samples.append((cpu_seconds() - before) * 1000)
    return samples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Steady:
    """The agent's memory after start-up (medians over the window, MB) and its CPU."""

    rss: float
    rss_max: float
    uss: float
    pss: float
    anonymous: float | None
    """Of RSS, anonymous memory (None where /proc/PID/smaps_rollup is missing)..."""
    file_backed: float | None
    """...and file-backed pages."""
    threads: int
    cpu_percent: float
    """Average CPU % of one core over the window."""


def anonymous_mb(pid: int) -> float | None:
    """The anonymous part of a process's RSS in MB, from Linux's /proc/PID/smaps_rollup."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def steady_agent(config: Path, workdir: Path, minutes: float) -> Steady:
    """Sample a real `remdiag-agent run` every 5 s for `minutes` after its start-up."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    collector = subprocess.Popen(
        [
            str(bin_dir / "remdiag"),
            "collector",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--database-url",
            f"sqlite:///{workdir / 'collector.db'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = subprocess.Popen(
        [
            str(bin_dir / "remdiag-agent"),
            "run",
            "--config",
            str(config),
            "--collector",
            f"127.0.0.1:{port}",
            "--state-dir",
            str(workdir / "agent"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        process = psutil.Process(agent.pid)
        time.sleep(15)  # start-up: imports, enrollment, the first run of every check
        start_cpu = process.cpu_times()
        start = time.monotonic()
        rss: list[float] = []
        uss: list[float] = []
        pss: list[float] = []
        anonymous: list[float] = []
        file_backed: list[float] = []
        deadline = start + minutes * 60
        while time.monotonic() < deadline:
            memory = process.memory_full_info()
            rss.append(memory.rss / 1e6)
            uss.append(memory.uss / 1e6)
            pss.append(memory.pss / 1e6)
            anon = anonymous_mb(agent.pid)
            if anon is not None:
                anonymous.append(anon)
                file_backed.append(memory.rss / 1e6 - anon)
            remaining = deadline - time.monotonic()
            print(
                f"\r  sampling agent pid {agent.pid}: {remaining:5.0f} s left, "
                f"RSS {rss[-1]:.1f} MB",
                end="",
                flush=True,
            )
            time.sleep(min(5.0, max(0.0, remaining)))
        end_cpu = process.cpu_times()
        elapsed = time.monotonic() - start
        threads = process.num_threads()
        print()
        used = sum(end_cpu[:4]) - sum(start_cpu[:4])  # user, system, children user/system
        return Steady(
            rss=statistics.median(rss),
            rss_max=max(rss),
            uss=statistics.median(uss),
            pss=statistics.median(pss),
            anonymous=statistics.median(anonymous) if anonymous else None,
            file_backed=statistics.median(file_backed) if file_backed else None,
            threads=threads,
            cpu_percent=100 * used / elapsed,
        )
    finally:
        for child in (agent, collector):
            child.send_signal(signal.SIGINT)
        for child in (agent, collector):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20, help="measured full cycles")
    parser.add_argument("--minutes", type=float, default=10.0, help="steady-state window")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "agent.toml"
        config.write_text(LOOPBACK_AGENT_CONFIG, encoding="utf-8")
        print(f"checks: {len(CHECKS)}")
        samples = full_cycle_cpu_ms(config, workdir / "state", args.cycles)
        cycle = statistics.median(samples)
        print(
            f"full cycle CPU: median {cycle:.1f} ms, max {max(samples):.1f} ms "
            f"over {len(samples)} cycles (target <= {CYCLE_TARGET_MS:.0f} ms): "
            f"{'PASS' if cycle <= CYCLE_TARGET_MS else 'FAIL'}"
        )
        if args.minutes > 0:
            steady = steady_agent(config, workdir, args.minutes)
            print(
                f"steady RSS: median {steady.rss:.1f} MB, max {steady.rss_max:.1f} MB "
                f"(target <= {RSS_TARGET_MB:.0f} MB): "
                f"{'PASS' if steady.rss_max <= RSS_TARGET_MB else 'FAIL'}; USS {steady.uss:.1f} MB"
            )
            split = ""
            if steady.anonymous is not None and steady.file_backed is not None:
                split = (
                    f"; of RSS: anonymous {steady.anonymous:.1f} MB, "
                    f"file-backed (library code) {steady.file_backed:.1f} MB"
                )
            print(f"  PSS {steady.pss:.1f} MB, {steady.threads} threads{split}")
            print(f"average CPU at the default schedule: {steady.cpu_percent:.3f}% of one core")


if __name__ == "__main__":
    main()
