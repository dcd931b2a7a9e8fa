"""Read-only machine diagnostics, for real on this machine (no systemd here: UNKNOWN, said why)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remdiag.vocabulary import DiagnosticState
from tests.agent.diagnostics.conftest import Run


async def test_run_check_uses_the_plan(run: Run) -> None:
    outcome = await run("run_check", {"check_id": "network.gateway"})
    assert outcome.state is DiagnosticState.DONE, outcome
    assert outcome.output["check_id"] == "network.gateway"
    assert outcome.output["thresholds"]["target"] == "127.0.0.1"  # the plan's, not the default
    assert outcome.output["status"] == "ok" and outcome.output["in_plan"] is True


async def test_run_all_checks_of_a_category_reports_progress(run: Run) -> None:
    outcome = await run("run_all_checks", {"category": "network"})
    assert outcome.state is DiagnosticState.DONE, outcome
    results = outcome.output["results"]
    assert results and {r["category"] for r in results} == {"network"}
    assert sum(outcome.output["counts"].values()) == len(results)


async def test_inventory(run: Run) -> None:
    outcome = await run("inventory")
    assert outcome.state is DiagnosticState.DONE
    assert outcome.output["cpu"]["logical_cores"] >= 1


async def test_top_processes_by_memory_and_cpu(run: Run) -> None:
    memory = await run("top_processes", {"by": "memory", "count": 3})
    assert memory.state is DiagnosticState.DONE, memory
    assert 1 <= len(memory.output["processes"]) <= 3
    sizes = [p["rss_bytes"] for p in memory.output["processes"]]
    assert sizes == sorted(sizes, reverse=True)
    cpu = await run("top_processes", {"by": "cpu", "count": 5, "interval_seconds": 0.3})
    assert cpu.state is DiagnosticState.DONE
    assert cpu.output["cpu_window_seconds"] is not None
    assert len(cpu.output["processes"]) <= 5


async def test_largest_dirs_ranks_and_bounds(run: Run, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "big" / "deep" / "deeper").mkdir(parents=True)
    (root / "small").mkdir()
    (root / "big" / "deep" / "deeper" / "blob").write_bytes(os.urandom(256 * 1024))
    (root / "small" / "f").write_bytes(b"x" * 10)
    (root / "link").symlink_to("/usr")  # never followed
    outcome = await run("largest_dirs", {"path": str(root), "max_depth": 2})
    assert outcome.state is DiagnosticState.DONE, outcome
    out = outcome.output
    assert out["complete"] is True
    paths = [d["path"] for d in out["directories"]]
    assert paths[0] == str(root / "big")
    assert str(root / "big" / "deep") in paths
    assert str(root / "big" / "deep" / "deeper") not in paths  # deeper than max_depth
    assert out["directories"][0]["bytes"] >= 256 * 1024
    assert out["total_bytes"] < 10 * 1024 * 1024  # /usr behind the link was not counted

    bounded = await run("largest_dirs", {"path": str(root), "max_entries": 100})
    assert bounded.state is DiagnosticState.DONE
    many = root / "many"
    many.mkdir()
    for index in range(150):
        (many / str(index)).touch()
    cut = await run("largest_dirs", {"path": str(root), "max_entries": 100})
    assert cut.output["complete"] is False
    assert "100 entries" in cut.output["stopped_because"]


async def test_largest_dirs_on_a_missing_path_is_unknown(run: Run, tmp_path: Path) -> None:
    outcome = await run("largest_dirs", {"path": str(tmp_path / "nope")})
    assert outcome.state is DiagnosticState.DONE
    assert outcome.output["status"] == "unknown" and "nope" in outcome.output["reason"]


async def test_system_log_errors_bounded_or_says_why(run: Run) -> None:
    outcome = await run("system_log_errors", {"since_minutes": 60, "max_lines": 5})
    assert outcome.state is DiagnosticState.DONE, outcome
    if outcome.output.get("status") == "unknown":
        assert outcome.output["reason"]
    else:
        assert outcome.output["source"] and len(outcome.output["lines"]) <= 5


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here")
async def test_services_status_without_systemd_is_unknown(run: Run) -> None:
    outcome = await run("services_status", {"names": ["cron"]})
    assert outcome.state is DiagnosticState.DONE
    assert outcome.output["status"] == "unknown"
    assert "systemd is not running" in outcome.output["reason"]


async def test_pending_updates_and_smart_answer(run: Run) -> None:
    updates = await run("pending_updates")
    assert updates.state is DiagnosticState.DONE, updates
    assert "pending" in updates.output or updates.output["status"] == "unknown"
    smart = await run("smart_details", {"device": "/dev/sda"})
    assert smart.state is DiagnosticState.DONE, smart
    assert "drives" in smart.output or smart.output["reason"]
