"""What the benchmarks with many simulated agents share: a collector subprocess, channels to it,
identities and the machine line they print.

Used by benchmarks/diagnostic_roundtrip.py and benchmarks/fleet.py (and through it
benchmarks/ingest.py). Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psutil
from google.protobuf import timestamp_pb2

from remdiag.v1 import agent_pb2

AGENT_VERSION = "0.0.0-bench"
CALL_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 60.0
AGENT_CHANNEL_OPTIONS = [
    # Each simulated agent gets its own TCP connection, as real agents on separate machines
    # would; without this gRPC shares one connection between channels with equal arguments.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says why."""


def timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def machine_identity(run_id: str, index: int) -> agent_pb2.MachineIdentity:
    """A distinct, recognisable machine: hostnames share the prefix `bench-<run_id>-`."""
    return agent_pb2.MachineIdentity(
        hostname=f"bench-{run_id}-{index:05d}",
        machine_id=f"bench-{run_id}-{index:05d}-{uuid.uuid4().hex}",
        os="linux",
        os_version="bench",
        architecture="x86_64",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_only(address: str) -> str:
    """`address` if it is 127.0.0.1:PORT; these benchmarks never leave the machine."""
    host, _, port = address.rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        raise BenchmarkError(f"--collector must be 127.0.0.1:PORT, not {address!r}")
    return address


@contextlib.contextmanager
def collector_process(
    port: int, database_url: str, workdir: Path, config: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`remdiag collector serve` on 127.0.0.1:`port`, its log in `workdir`; stopped on exit.
    `config`: a TOML config file for it (its defaults without)."""
    log_path = workdir / "collector.log"
    command = [
        str(Path(sys.executable).parent / "remdiag"),
        "collector",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--database-url",
        database_url,
        "--data-dir",
        str(workdir / "collector-data"),
        *(["--config", str(config)] if config is not None else []),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield process, log_path
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(path: Path, lines: int = 25) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(f"    {line}" for line in text[-lines:])


def machine_line() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"machine: {platform.node()}, {os.cpu_count()} cores ({model}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, grpcio {grpc.__version__}"
    )


def command_line() -> str:
    python = (
        os.path.relpath(sys.executable)
        if sys.executable.startswith(os.getcwd())
        else sys.executable
    )
    return f"command: {shlex.join([python, *sys.orig_argv[1:]])}"


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average before the run: {one:.2f} (1 min), {five:.2f} (5 min)"


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def wait_listening(port: int, alive: Callable[[], str | None], timeout_s: float) -> None:
    """Returns once something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if (trouble := alive()) is not None:
            raise BenchmarkError(trouble)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise BenchmarkError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")
        time.sleep(0.2)
