"""`remdiag up` as a user runs it: a real process, a ticket in the view, Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.support import free_port

LOOPBACK_AGENT = """
[checks."network.gateway"]
thresholds = { target = "127.0.0.1", probes = 1 }
[checks."network.dns"]
thresholds = { names = ["localhost"] }
"""
GIVE_UP_S = 90


def test_up_registers_the_machine_opens_a_ticket_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text(LOOPBACK_AGENT, encoding="utf-8")
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from collector.cli import main; main()",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / ".remdiag"),
        "--agent-config",
        str(agent_config),
        "--demo",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: list[str] = []
    ticket_seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "open tickets: #1 disk.free_space" in line:
                ticket_seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ticket_seen.wait(GIVE_UP_S), "".join(lines)
        # `remdiag tickets` beside it just works: up's admin token is in .remdiag/console-token.
        remdiag = [sys.executable, "-c", "from collector.cli import main; main()"]
        tickets = subprocess.run(
            [*remdiag, "tickets", "--json", "--collector", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={
                k: v
                for k, v in os.environ.items()
                if k not in ("REMDIAG_TOKEN", "REMDIAG_TOKEN_FILE")
            },
            timeout=60,
        )
        assert tickets.returncode == 0, tickets.stderr
        assert "disk.free_space" in tickets.stdout
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()
    output = "".join(lines)
    assert "remdiag is up." in output
    assert "(connected)" in output
    assert output.rstrip().endswith("remdiag stopped.")
    assert "Traceback" not in output
    assert (tmp_path / ".remdiag" / "collector.db").exists()
    assert (tmp_path / ".remdiag" / "agent" / "identity.json").stat().st_mode & 0o077 == 0
    assert (tmp_path / ".remdiag" / "console-token").stat().st_mode & 0o777 == 0o600
