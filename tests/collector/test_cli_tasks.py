"""`remdiag tasks` and `remdiag recurring` against a real collector, and their errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector.cli import main
from collector.config import CollectorSettings
from collector.server import Collector, serve
from tests.collector.conftest import add_people, token_of


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    await running.store.run(add_people)
    yield running
    await running.stop()


async def invoke(collector: Collector, *args: str, who: str = "admin") -> Result:
    address = ("--collector", f"127.0.0.1:{collector.port}")
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main, [*args, *address], env={"COLUMNS": "250", "REMDIAG_TOKEN": token_of(who)}
        )
    )


async def test_tasks_create_list_history_delete(collector: Collector) -> None:
    made = await invoke(
        collector,
        "tasks",
        "create",
        "--name",
        "weekly check-up",
        "--step",
        "inventory",
        "--step",
        "largest_dirs path=/home",
        "--cron",
        "0 2 * * 0",
        "--timezone",
        "Europe/Lisbon",
        "--window",
        "2h",
        "--tag",
        "laptops",
        "--json",
    )
    assert made.exit_code == 0, made.output
    task = json.loads(made.output)
    assert task["name"] == "weekly check-up" and task["window_minutes"] == 120
    assert [s["action"] for s in task["steps"]] == ["inventory", "largest_dirs"]
    assert task["steps"][1]["args"]["path"] == "/home"

    listed = await invoke(collector, "tasks", who="alice")
    assert listed.exit_code == 0, listed.output
    assert "weekly check-up" in listed.output and 'path="/home"' in listed.output
    assert "tags laptops" in listed.output and "Europe/Lisbon" in listed.output

    history = await invoke(collector, "tasks", "history", task["id"], who="alice")
    assert history.exit_code == 0, history.output
    assert "0 runs" in history.output
    as_json_ = await invoke(collector, "tasks", "history", task["id"], "--json")
    assert json.loads(as_json_.output)["task"]["name"] == "weekly check-up"

    denied = await invoke(collector, "tasks", "delete", task["id"], who="alice")
    assert denied.exit_code == 1 and denied.output.startswith("remdiag: ")
    deleted = await invoke(collector, "tasks", "delete", task["id"])
    assert deleted.exit_code == 0 and f"task {task['id']} deleted" in deleted.output
    gone = await invoke(collector, "tasks", "history", task["id"])
    assert gone.exit_code == 1 and f"remdiag: no task {task['id']}" in gone.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--step", "inventory", "--window", "2x", "--all"], 2, "--window"),
        (["--step", "inventory", "--window", "90s", "--all"], 2, "whole number of minutes"),
        (["--step", "'unclosed", "--window", "1h", "--all"], 2, "--step"),
        (["--step", "largest_dirs path", "--window", "1h", "--all"], 2, "NAME=VALUE"),
        (["--step", "inventory", "--window", "1h"], 2, "--tag, --machine or --all"),
        (["--step", "inventory", "--window", "1h", "--all", "--tag", "x"], 2, "not both"),
        (["--step", "rm_rf", "--window", "1h", "--all"], 1, "unknown action"),
        (["--step", "inventory", "--window", "2d", "--all"], 1, "window: 1 to 1440"),
    ],
)
async def test_tasks_create_errors(
    collector: Collector, args: list[str], code: int, message: str
) -> None:
    result = await invoke(collector, "tasks", "create", "--name", "n", "--cron", "0 2 * * *", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


async def test_recurring_create_list_delete(collector: Collector) -> None:
    made = await invoke(
        collector,
        "recurring",
        "create",
        "--name",
        "backups",
        "--title",
        "Check the backup restores",
        "--description",
        "Restore one file and open it.",
        "--every-days",
        "90",
        "--tag",
        "finance",
        "--severity",
        "critical",
        "--json",
    )
    assert made.exit_code == 0, made.output
    row = json.loads(made.output)
    assert row["every_days"] == 90 and row["severity"] == "SEVERITY_CRITICAL"
    assert row["category"] == "CATEGORY_SOFTWARE"
    listed = await invoke(collector, "recurring", who="alice")
    assert listed.exit_code == 0, listed.output
    assert "Check the backup restores" in listed.output and "every 90 days" in listed.output

    both = await invoke(
        collector,
        "recurring",
        "create",
        "--name",
        "x",
        "--title",
        "t",
        "--every-days",
        "9",
        "--cron",
        "0 9 * * 1",
        "--all",
    )
    assert both.exit_code == 2 and "exactly one of --cron or --every-days" in both.output
    bad_cron = await invoke(
        collector, "recurring", "create", "--name", "x", "--title", "t", "--cron", "0 9", "--all"
    )
    assert bad_cron.exit_code == 1 and "remdiag: cron" in bad_cron.output

    deleted = await invoke(collector, "recurring", "delete", str(row["id"]))
    assert deleted.exit_code == 0, deleted.output
    again = await invoke(collector, "recurring", "delete", str(row["id"]))
    assert again.exit_code == 1 and f"no recurring ticket {row['id']}" in again.output
