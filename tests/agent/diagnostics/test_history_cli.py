"""remdiag-agent history: what ran on this PC and by whom; the agent's diagnostics wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from agent.app import Agent
from agent.cli import main
from agent.config import AgentSettings, DiagnosticsSettings
from agent.diagnostics.history import HISTORY_FILE, History
from agent.diagnostics.model import Request
from remdiag.vocabulary import DiagnosticState


def config(tmp_path: Path) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    return str(path)


def test_history_empty(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["history", "--config", config(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "No diagnostics have been run" in result.output
    assert not (tmp_path / "state" / HISTORY_FILE).exists()


def test_history_table_and_json(tmp_path: Path) -> None:
    history = History(tmp_path / "state" / HISTORY_FILE)
    history.start("a1", "ping", {"host": "127.0.0.1"}, "alice", 12, False)
    history.finish("a1", DiagnosticState.DONE, "", {"ok": 1}, 8, False)
    history.start("a2", "clear_temp", {}, "bob", 0, True)
    history.finish("a2", DiagnosticState.REFUSED, "remediation is not enabled", {}, 0, False)
    history.close()

    table = CliRunner().invoke(main, ["history", "--config", config(tmp_path)])
    assert table.exit_code == 0, table.output
    for text in ("ping", "alice", "12", "clear_temp", "bob", "refused", "done"):
        assert text in table.output

    raw = CliRunner().invoke(main, ["history", "--json", "--config", config(tmp_path)])
    rows = json.loads(raw.output)
    assert [r["request_id"] for r in rows] == ["a2", "a1"]
    assert rows[1] | {"started_at": "", "finished_at": ""} == {
        "request_id": "a1",
        "action": "ping",
        "args": {"host": "127.0.0.1"},
        "requested_by": "alice",
        "ticket_id": 12,
        "remediation": False,
        "started_at": "",
        "finished_at": "",
        "state": "done",
        "error": "",
        "output_bytes": 8,
        "truncated": False,
    }
    assert rows[0]["remediation"] is True

    limited = CliRunner().invoke(
        main, ["history", "--json", "--limit", "1", "--config", config(tmp_path)]
    )
    assert [r["request_id"] for r in json.loads(limited.output)] == ["a2"]


def test_diagnostics_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown remediation"):
        DiagnosticsSettings(remediation_actions=["format_disk"])
    with pytest.raises(ValidationError, match="absolute"):
        DiagnosticsSettings(temp_dirs=[Path("relative")])
    with pytest.raises(ValidationError, match="not a service name"):
        DiagnosticsSettings(services_allowed=["a b"])
    settings = AgentSettings.model_validate(
        {"diagnostics": {"remediation_enabled": True, "remediation_actions": ["clear_temp"]}}
    )
    assert settings.diagnostics.remediation_actions == ["clear_temp"]


async def test_agent_runs_diagnostics_and_records_them(tmp_path: Path) -> None:
    agent = Agent(AgentSettings(state_dir=tmp_path / "state"))
    lines: list[str] = []

    async def progress(line: str) -> None:
        lines.append(line)

    outcome = await agent.run_diagnostic(
        Request("w1", "run_check", {"check_id": "memory.pressure"}, "carol", None, 3), progress
    )
    agent.diagnostics.close()
    assert outcome.state is DiagnosticState.DONE, outcome
    assert outcome.output["check_id"] == "memory.pressure" and outcome.output["in_plan"]
    (row,) = agent.diagnostics.history.rows()
    assert (row.request_id, row.requested_by, row.ticket_id) == ("w1", "carol", 3)
    assert (tmp_path / "state" / HISTORY_FILE).exists()
