"""agent/report.py: the end user's view of the checks prints the machine's text as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.report import show_report
from agent.runner import CheckRun
from remdiag.vocabulary import Category, CheckStatus


def test_summaries_with_brackets_are_text_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [
        CheckRun(
            check_id="process.runaway",
            category=Category.SOFTWARE,
            status=CheckStatus.WARNING,
            summary="[kworker/0:1] uses 97% CPU; see [/var/log]",
            values=(),
            thresholds={},
            remediation="Ask the user to close [bold] programs",
            observed_at=datetime(2026, 11, 24, tzinfo=UTC),
        )
    ]
    show_report(runs)  # the console the CLI uses
    shown = " ".join(capsys.readouterr().out.split())
    assert "[kworker/0:1] uses 97% CPU; see [/var/log]" in shown
    assert "process.runaway: Ask the user to close [bold] programs" in shown
    assert "1 warning" in shown
