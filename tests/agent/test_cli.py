"""remdiag-agent check: every check once on this machine, for real, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from agent.checks.registry import CHECKS
from agent.cli import main

# Network checks aimed at loopback: tests never probe the real gateway or DNS server.
LOOPBACK_CONFIG = """
[checks."network.gateway"]
thresholds = { target = "127.0.0.1", probes = 1 }
[checks."network.dns"]
thresholds = { names = ["localhost"] }
"""


def config(tmp_path: Path) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(LOOPBACK_CONFIG, encoding="utf-8")
    return str(path)


def test_check_json_reports_every_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--json", "--config", config(tmp_path)])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert {r["check_id"] for r in runs} == set(CHECKS)
    by_id = {r["check_id"]: r for r in runs}
    # Loopback answers and localhost resolves on any machine.
    assert by_id["network.gateway"]["status"] == "ok", by_id["network.gateway"]
    assert by_id["network.dns"]["status"] == "ok", by_id["network.dns"]
    for r in runs:
        assert r["status"] in {"ok", "warning", "critical", "unknown"}
        assert r["summary"]


def test_check_table_is_readable(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", config(tmp_path)])
    assert result.exit_code == 0, result.output
    for check_id in CHECKS:
        assert check_id in result.output


def test_check_narrows_by_category_and_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["check", "--json", "--config", config(tmp_path), "--category", "network"]
    )
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert runs and {r["category"] for r in runs} == {"network"}

    result = CliRunner().invoke(
        main, ["check", "--json", "--config", config(tmp_path), "--check", "disk.free_space"]
    )
    assert [r["check_id"] for r in json.loads(result.output)] == ["disk.free_space"]


def test_check_refuses_an_unknown_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", config(tmp_path), "--check", "nope"])
    assert result.exit_code == 2
    assert "unknown check nope" in result.output


def test_table_groups_by_category_with_marks(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", config(tmp_path)])
    assert result.exit_code == 0, result.output
    for heading in ("Hardware", "Network"):
        assert heading in result.output
    assert "✔" in result.output
