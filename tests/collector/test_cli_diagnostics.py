"""`remdiag diagnose`, `diagnostics` and `actions` against a real collector and a real agent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent.app import Agent
from agent.config import AgentSettings
from collector.cli import main, parse_args
from collector.config import CollectorSettings
from collector.server import Collector, serve
from tests.collector.conftest import add_people, token_of
from tests.e2e.test_end_to_end import running_agent
from tests.support import LOOPBACK_CHECKS, eventually


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    await running.store.run(add_people)
    yield running
    await running.stop()


async def invoke(collector: Collector, *args: str) -> Result:
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main,
            [*args, "--collector", f"127.0.0.1:{collector.port}"],
            env={"COLUMNS": "200", "REMDIAG_TOKEN": token_of("alice")},
        )
    )


def test_arguments_read_as_json_where_they_can() -> None:
    assert parse_args(("path=/tmp", "top=5", "flag=true", 'types=["A"]', "n=x", "n=y")) == {
        "path": "/tmp",
        "top": 5,
        "flag": True,
        "types": ["A"],
        "n": ["x", "y"],
    }


async def test_diagnose_a_live_machine_by_host_name(collector: Collector, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob").write_bytes(b"x" * 100_000)
    settings = AgentSettings(
        collector=f"127.0.0.1:{collector.port}",
        state_dir=tmp_path / "agent",
        batch_max_delay_seconds=0.05,
        checks=LOOPBACK_CHECKS,
    )
    agent = Agent(settings)
    async with running_agent(agent):

        async def connected() -> bool:
            listed = await invoke(collector, "agents", "--json")
            return any(a.get("connected") for a in json.loads(listed.output))

        await eventually(connected, "the agent to connect")
        shown = await invoke(
            collector,
            "diagnose",
            agent.machine.hostname,
            "largest_dirs",
            "--arg",
            f"path={tmp_path}",
            "--arg",
            "top=3",
            "--json",
        )
    assert shown.exit_code == 0, shown.output
    done = json.loads(shown.stdout)
    assert done["state"] == "DIAGNOSTIC_STATE_DONE" and done["requested_by"] == "alice"
    assert "data" in json.dumps(done["output"])

    listed = await invoke(collector, "diagnostics", "--machine", agent.machine.hostname)
    assert listed.exit_code == 0 and "largest_dirs" in listed.output and "done" in listed.output


async def test_refusals_exit_1_with_a_sentence(collector: Collector) -> None:
    unknown = await invoke(collector, "diagnose", "ghost", "inventory")
    assert unknown.exit_code == 1 and "no machine 'ghost'" in unknown.output
    bad = await invoke(collector, "diagnose", "ghost", "ping", "--arg", "novalue")
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output
    expiry = await invoke(collector, "diagnose", "ghost", "inventory", "--expires", "soon")
    assert expiry.exit_code == 2 and "--expires" in expiry.output
    assert "Traceback" not in unknown.output + bad.output + expiry.output


async def test_actions_lists_the_agents_catalog(collector: Collector) -> None:
    listed = await invoke(collector, "actions", "--json")
    assert listed.exit_code == 0
    names = {a["name"] for a in json.loads(listed.output)}
    assert {"largest_dirs", "dns_lookup", "clear_temp"} <= names
    assert len(names) >= 12
    table = await invoke(collector, "actions")
    assert "remediation: opt-in" in table.output
