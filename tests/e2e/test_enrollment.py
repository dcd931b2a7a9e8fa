"""Enrollment end to end with real processes: `remdiag collector serve` with TLS on loopback,
`remdiag token create`, `remdiag-agent enroll`, `remdiag-agent run` streaming over mutual TLS,
and `remdiag agents revoke` closing that stream for good. Then the CLIs' answers to bad input.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from agent.cli import main as agent_main
from agent.identity import (
    CA_FILE,
    IDENTITY_FILE,
    Identity,
    forget_identity,
    load_identity,
    pin_ca,
    save_identity,
)
from collector import tls
from collector.store.models import Agent as AgentRow
from collector.store.models import CheckResult, EnrollmentToken
from tests.support import LOOPBACK_CHECKS, eventually, free_port

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent
DISK = "disk.free_space"
Spawn = Callable[[list[str], str], "subprocess.Popen[bytes]"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REMDIAG_")}


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start processes logging to tmp_path; whatever still runs at the end is killed."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / log_name).open("ab")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=clean_env(), timeout=60
    )


async def listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the collector exited"
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def agent_config(tmp_path: Path, enroll_port: int) -> Path:
    """Network checks on loopback, the disk check every second, quick batches and retries;
    the collector's enrollment port is not the default (its port + 1) here."""
    disk_paths = json.dumps([str(tmp_path)])
    lines = [
        "batch_max_delay_seconds = 0.05",
        "reconnect_initial_seconds = 0.1",
        "reconnect_max_seconds = 0.5",
        "[tls]",
        f'enroll_address = "127.0.0.1:{enroll_port}"',
        f'[checks."{DISK}"]',
        "interval_seconds = 1",
        f"thresholds = {{ paths = {disk_paths} }}",
    ]
    for check_id, check in LOOPBACK_CHECKS.items():
        lines.append(f'[checks."{check_id}"]')
        thresholds = ", ".join(f"{k} = {json.dumps(v)}" for k, v in check["thresholds"].items())
        lines.append(f"thresholds = {{ {thresholds} }}")
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_enroll_run_over_mutual_tls_and_revoke(tmp_path: Path, spawn: Spawn) -> None:
    port, enroll_port = free_port(), free_port()
    data_dir = tmp_path / "collector-data"
    database_url = f"sqlite:///{tmp_path / 'collector.db'}"
    config = tmp_path / "collector.toml"
    # Open enrollment stays allowed (loopback): even so, a revoked machine may not come back.
    config.write_text(
        f'listen = "127.0.0.1:{port}"\n'
        f'database_url = "{database_url}"\n'
        f'data_dir = "{data_dir}"\n'
        "revocation_check_seconds = 0.5\n"
        "[tls]\n"
        "enabled = true\n"
        f'enroll_listen = "127.0.0.1:{enroll_port}"\n'
    )
    collector = spawn(
        [str(BIN / "remdiag"), "collector", "serve", "--config", str(config)], "collector.log"
    )
    for bound in (port, enroll_port):
        await eventually(lambda b=bound: listening(b, collector), "the collector to listen", 30)
    assert mode(data_dir / tls.CA_KEY_FILE) == 0o600

    created = run_cli(
        BIN / "remdiag", "token", "create", "--enroll", "--expires", "1h", "--uses", "1",
        "--config", config,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()

    state_dir = tmp_path / "agent-state"
    enroll_args = [
        BIN / "remdiag-agent", "enroll",
        "--collector", f"127.0.0.1:{port}",
        "--enroll-address", f"127.0.0.1:{enroll_port}",
        "--ca", data_dir / tls.CA_CERT_FILE,
        "--state-dir", state_dir,
        "--token", token,
    ]  # fmt: skip
    enrolled = run_cli(*enroll_args)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "TLS" in enrolled.stdout
    identity = load_identity(state_dir)
    assert identity is not None and identity.has_certificate
    assert identity.collector == f"127.0.0.1:{port}"
    # Owner-only: the directory, the identity (credential and key) and the pinned CA.
    assert mode(state_dir) == 0o700
    assert mode(state_dir / IDENTITY_FILE) == 0o600
    assert mode(state_dir / CA_FILE) == 0o600
    assert (state_dir / CA_FILE).read_bytes() == (data_dir / tls.CA_CERT_FILE).read_bytes()
    assert not [p for p in state_dir.iterdir() if p.name.endswith(".tmp")]

    # The token had one use: it is spent.
    again = run_cli(*enroll_args)
    assert again.returncode == 1
    assert "token" in again.stderr and len(again.stderr.strip().splitlines()) == 1

    # `run` with no --collector: it uses the identity's collector, over mutual TLS.
    engine = create_engine(database_url)
    agent = spawn(
        [
            str(BIN / "remdiag-agent"),
            "run",
            "--config",
            str(agent_config(tmp_path, enroll_port)),
            "--state-dir",
            str(state_dir),
        ],
        "agent.log",
    )

    def stored_results() -> int:
        with Session(engine) as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(CheckResult)
                    .where(CheckResult.agent_id == identity.agent_id)
                )
                or 0
            )

    def row() -> AgentRow:
        with Session(engine) as session:
            found = session.get(AgentRow, identity.agent_id)
            assert found is not None
            return found

    async def results_arrived() -> int:
        assert agent.poll() is None, "the agent exited"
        return stored_results()

    await eventually(results_arrived, "results over mutual TLS", 60)
    assert row().connected
    certificate = x509.load_pem_x509_certificate(identity.certificate_pem.encode())
    assert row().certificate_sha256 == tls.issued(certificate).sha256

    # The console, through the local socket a TLS collector keeps for the CLI, with a token.
    technician = run_cli(
        BIN / "remdiag", "token", "create", "--role", "technician", "--name", "alice",
        "--config", config,
    )  # fmt: skip
    assert technician.returncode == 0, technician.stderr
    listed = run_cli(
        BIN / "remdiag", "agents", "--json", "--collector", f"unix:{data_dir / 'console.sock'}",
        "--token", technician.stdout.strip(),
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [a["agent_id"] for a in json.loads(listed.stdout)] == [identity.agent_id]

    revoked = run_cli(BIN / "remdiag", "agents", "revoke", identity.agent_id, "--config", config)
    assert revoked.returncode == 0, revoked.stderr

    async def stream_closed() -> bool:
        return not row().connected

    await eventually(stream_closed, "the revoked agent's stream to close", 60)

    async def reenrollment_refused() -> bool:
        return "this machine was revoked" in (tmp_path / "agent.log").read_text(errors="replace")

    # The agent tries to enroll again (open enrollment): refused, never silently un-revoked.
    await eventually(reenrollment_refused, "the agent's re-enrollment to be refused", 60)
    assert row().revoked_at is not None and not row().connected
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AgentRow)) == 1
        (uses_left,) = session.scalars(select(EnrollmentToken.uses_left))
        assert uses_left == 0
    engine.dispose()


# -- bad input: one line, exit 2 (or 1 for a failed request) --------------------------------


def agent_cli(*args: str) -> Result:
    return CliRunner().invoke(agent_main, list(args), env={"REMDIAG_AGENT_ENROLLMENT_TOKEN": None})


def not_pem(tmp_path: Path) -> str:
    path = tmp_path / "not-a-ca.pem"
    path.write_text("hello\n")
    return str(path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(
            lambda t: ["--collector", "127.0.0.1:50051"], "--token is required", id="no token"
        ),
        pytest.param(
            lambda t: ["--token", "x", "--ca", str(t / "missing.pem")],
            "cannot read CA file",
            id="CA file missing",
        ),
        pytest.param(
            lambda t: ["--token", "x", "--ca", str(t)], "cannot read CA file", id="CA dir"
        ),
        pytest.param(lambda t: ["--token", "x", "--ca", not_pem(t)], "no PEM", id="CA not PEM"),
        pytest.param(
            lambda t: ["--token", "x", "--collector", "collector.test:50051"],
            "beyond loopback",
            id="remote without CA",
        ),
        pytest.param(
            lambda t: ["--token", "x", "--collector", "nohost"], "HOST:PORT", id="bad address"
        ),
        pytest.param(
            lambda t: ["--token", "x", "--enroll-address", "nowhere"],
            "tls.enroll_address",
            id="bad enroll address",
        ),
    ],
)
def test_bad_enroll_input_is_one_line_and_exit_2(
    tmp_path: Path, args: Callable[[Path], list[str]], says: str
) -> None:
    result = agent_cli("enroll", "--state-dir", str(tmp_path / "state"), *args(tmp_path))
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / IDENTITY_FILE).exists()


def test_enrolling_with_no_collector_there_fails_with_1(tmp_path: Path) -> None:
    result = agent_cli(
        "enroll",
        "--state-dir",
        str(tmp_path / "state"),
        "--collector",
        f"127.0.0.1:{free_port()}",
        "--token",
        "x",
    )
    assert result.exit_code == 1, result.output
    assert "cannot reach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_refuses_plaintext_to_a_remote_collector(tmp_path: Path) -> None:
    result = agent_cli(
        "run", "--state-dir", str(tmp_path / "state"), "--collector", "collector.test:50051"
    )
    assert result.exit_code == 2, result.output
    assert "beyond loopback" in result.stderr


def test_bad_duration_from_the_real_cli(tmp_path: Path) -> None:
    completed = run_cli(
        BIN / "remdiag", "token", "create", "--enroll", "--expires", "24x",
        "--database-url", f"sqlite:///{tmp_path / 'c.db'}",
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "--expires" in completed.stderr


def test_saving_an_identity_tightens_what_was_there(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    state_dir.chmod(0o755)
    loose = state_dir / IDENTITY_FILE
    loose.write_text("{}")
    loose.chmod(0o644)
    save_identity(state_dir, Identity("a1", "secret", "127.0.0.1:1", "CERT", "KEY"))
    pin_ca(state_dir, b"CA")
    assert mode(state_dir) == 0o700
    assert mode(state_dir / IDENTITY_FILE) == 0o600 and mode(state_dir / CA_FILE) == 0o600
    assert load_identity(state_dir) == Identity("a1", "secret", "127.0.0.1:1", "CERT", "KEY")
    assert "secret" not in repr(load_identity(state_dir)) and "KEY" not in repr(
        load_identity(state_dir)
    )
    forget_identity(state_dir)
    assert load_identity(state_dir) is None and (state_dir / CA_FILE).exists()
