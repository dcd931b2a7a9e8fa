"""`remdiag policy ...` against a real collector: apply, diff, list, show, effective, delete,
`agents` showing versions, and the errors (a message, exit 1 or 2, never a traceback)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector import fleet
from collector.cli import main
from collector.config import CollectorSettings
from collector.server import Collector, serve
from tests.collector.conftest import add_people, token_of
from tests.collector.factories import enrolled

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "policy.toml"


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    await running.store.run(add_people)
    yield running
    await running.stop()


async def invoke(collector: Collector, *args: str, who: str = "admin") -> Result:
    address = f"127.0.0.1:{collector.port}"
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main,
            [*args, "--collector", address],
            env={"COLUMNS": "200", "REMDIAG_TOKEN": token_of(who)},
        )
    )


async def test_apply_list_show_effective_delete(collector: Collector) -> None:
    agent_id = collector.store.call(lambda s: enrolled(s).agent_id)
    collector.store.call(lambda s: fleet.tag(s, agent_id, ["finance"], []))

    diff = await invoke(collector, "policy", "diff", "-f", str(EXAMPLE))
    assert diff.exit_code == 0, diff.output
    assert "would create baseline (version 1)" in diff.output
    assert '"max_used_percent_warning": 75.0' in diff.output
    assert "1 machines' effective policy would change" in diff.output

    applied = await invoke(collector, "policy", "apply", "-f", str(EXAMPLE))
    assert applied.exit_code == 0, applied.output
    assert "created finance (version 1)" in applied.output

    listed = await invoke(collector, "policy", "list")
    assert listed.exit_code == 0, listed.output
    assert "baseline" in listed.output and "tags finance" in listed.output

    shown = await invoke(collector, "policy", "show", "finance", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["spec"]["priority"] == 10

    found = await invoke(collector, "policy", "effective", agent_id)
    assert found.exit_code == 0, found.output
    assert "policy finance (tag finance)" in found.output
    assert "policy baseline (all)" in found.output
    as_json = await invoke(collector, "policy", "effective", "pc-1", "--json")
    values = {(v["check_id"], v["field"]): v for v in json.loads(as_json.output)["values"]}
    assert values[("updates.security_pending", "timezone")]["value_json"] == '"Europe/Lisbon"'

    agents = await invoke(collector, "agents")
    assert agents.exit_code == 0, agents.output
    assert "behind" in agents.output  # the machine never said it runs it

    deleted = await invoke(collector, "policy", "delete", "finance")
    assert deleted.exit_code == 0, deleted.output
    assert "1 machines' effective policy changed" in deleted.output


async def test_errors_are_one_line_and_change_nothing(collector: Collector, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[policy]]\nname = "ok"\ntarget = { all = true }\n\n'
        '[[policy]]\nname = "bad"\ntarget = { all = true }\n'
        '[policy.checks."disk.free_space"]\ninterval_seconds = 60\ncron = "0 * * * *"\n'
    )
    refused = await invoke(collector, "policy", "apply", "-f", str(bad))
    assert refused.exit_code == 1
    assert refused.output.startswith("remdiag: policy 'bad': checks.disk.free_space: give")
    assert "Traceback" not in refused.output
    listed = await invoke(collector, "policy", "list", "--json")
    assert json.loads(listed.output) == []

    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    result = await invoke(collector, "policy", "apply", "-f", str(broken))
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = await invoke(collector, "policy", "apply", "-f", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2 and "remdiag:" in result.output

    result = await invoke(collector, "policy", "show", "nothing")
    assert result.exit_code == 1 and "remdiag: no policy 'nothing'" in result.output
    result = await invoke(collector, "policy", "apply", "-f", str(EXAMPLE), who="alice")
    assert result.exit_code == 1 and result.output.startswith("remdiag: ")
    listed = await invoke(collector, "policy", "list", "--json", who="alice")
    assert listed.exit_code == 0 and json.loads(listed.output) == []


async def test_a_window_takes_a_policys_target(collector: Collector) -> None:
    applied = await invoke(collector, "policy", "apply", "-f", str(EXAMPLE))
    assert applied.exit_code == 0, applied.output
    made = await invoke(
        collector,
        "windows",
        "create",
        "--name",
        "finance close",
        "--cron",
        "0 18 * * 5",
        "--duration",
        "2h",
        "--policy",
        "finance",
        "--json",
    )
    assert made.exit_code == 0, made.output
    window = json.loads(made.output)
    assert window["tags"] == ["finance"] and not window.get("all_machines")
    both = await invoke(
        collector,
        "windows",
        "create",
        "--name",
        "x",
        "--cron",
        "0 1 * * *",
        "--duration",
        "1h",
        "--policy",
        "finance",
        "--all",
    )
    assert both.exit_code == 2 and "not both" in both.output
    unknown = await invoke(
        collector,
        "windows",
        "create",
        "--name",
        "x",
        "--cron",
        "0 1 * * *",
        "--duration",
        "1h",
        "--policy",
        "nope",
    )
    assert unknown.exit_code == 1 and "nope" in unknown.output
