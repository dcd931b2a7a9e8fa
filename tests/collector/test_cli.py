"""The `remdiag` CLI against a real collector: agents, tickets, ticket, and its errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector import fleet
from collector.cli import main
from collector.config import CollectorSettings
from collector.engine import TicketRules
from collector.ingest import IncomingResult, ingest_batch
from collector.server import Collector, serve
from remdiag.vocabulary import Category, CheckStatus
from tests.collector.conftest import add_people, token_of
from tests.support import free_port

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    await running.store.run(add_people)
    yield running
    await running.stop()


def failing(check_id: str) -> IncomingResult:
    return IncomingResult(
        check_id=check_id,
        category=Category.HARDWARE,
        status=CheckStatus.CRITICAL,
        summary="/ 99.0% used, 0.1 GiB free",
        values=[{"name": "used_percent", "value": 99.0, "unit": "%"}],
        thresholds={"max_used_percent_critical": 95},
        remediation="Free up space.",
        observed_at=NOW,
    )


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main, list(args), env={"COLUMNS": "200", "REMDIAG_TOKEN": token_of("alice")}
        )
    )


async def test_agents_tickets_and_ticket(collector: Collector) -> None:
    store = collector.store
    machine = fleet.MachineInfo(hostname="pc-42", machine_id="m-42", os="Linux")
    enrolled = store.call(lambda s: fleet.enroll(s, machine, NOW))
    for sequence in (1, 2, 3):
        store.call(
            lambda s, q=sequence: ingest_batch(
                s, enrolled.agent_id, q, [failing("disk.free_space")], TicketRules(), NOW
            )
        )
    address = f"127.0.0.1:{collector.port}"

    agents = await invoke("agents", "--collector", address, "--json")
    assert agents.exit_code == 0, agents.output
    assert [a["hostname"] for a in json.loads(agents.output)] == ["pc-42"]

    listed = await invoke("tickets", "--open", "--collector", address)
    assert listed.exit_code == 0, listed.output
    assert "pc-42" in listed.output and "disk.free_space" in listed.output

    shown = await invoke("ticket", "1", "--collector", address)
    assert shown.exit_code == 0, shown.output
    assert "99.0% used" in shown.output
    assert "opened" in shown.output
    assert "Free up space." in shown.output


async def test_missing_ticket_is_a_clear_error(collector: Collector) -> None:
    result = await invoke("ticket", "999", "--collector", f"127.0.0.1:{collector.port}")
    assert result.exit_code == 1
    assert "no ticket 999" in result.output
    assert "Traceback" not in result.output


async def test_bad_ticket_id_is_a_usage_error() -> None:
    result = await invoke("ticket", "abc")
    assert result.exit_code == 2
    assert "abc" in result.output


async def test_unreachable_collector_is_a_clear_error() -> None:
    result = await invoke("tickets", "--collector", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "cannot reach the collector" in result.output


def test_serve_with_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text("[tickets]\nfails_before_ticket = 0\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["collector", "serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "tickets.fails_before_ticket" in result.output
    assert "\n" not in result.output.strip()


def test_serve_with_malformed_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text("listen = \n", encoding="utf-8")
    result = CliRunner().invoke(main, ["collector", "serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "not valid TOML" in result.output


async def test_a_ticket_id_beyond_any_stored_one_is_a_usage_error() -> None:
    result = await invoke("ticket", str(2**63))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
