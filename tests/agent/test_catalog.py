"""docs/checks.md is the catalog the registry produces, and covers every check."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agent.catalog import markdown
from agent.checks.registry import CHECKS
from agent.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_docs_checks_md_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(CHECKS), (
        "docs/checks.md is stale: .venv/bin/remdiag-agent catalog --markdown > docs/checks.md"
    )


def test_catalog_names_every_check_and_its_thresholds() -> None:
    text = markdown(CHECKS)
    for check in CHECKS.values():
        assert f"`{check.id}`" in text
        for name in type(check.thresholds()).model_fields:
            assert f"`{name}`" in text


def test_catalog_command_lists_every_check() -> None:
    result = CliRunner().invoke(main, ["catalog"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(check_id in result.output for check_id in CHECKS)
    assert len(CHECKS) >= 25
