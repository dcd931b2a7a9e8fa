"""How `remdiag-agent` shows results to a person: rich tables by category, marks and hints.

Kept apart from agent/cli.py so the running agent never loads rich.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.catalog import interval_text
from agent.checks.base import Check
from agent.runner import CheckRun
from remdiag.vocabulary import Category, CheckStatus

STATUS_MARK = {
    CheckStatus.OK: ("✔", "green"),
    CheckStatus.WARNING: ("▲", "yellow"),
    CheckStatus.CRITICAL: ("✖", "bold red"),
    CheckStatus.UNKNOWN: ("?", "magenta"),
}


def show_report(runs: list[CheckRun], console: Console | None = None) -> None:
    """The checks grouped by category, a mark per status, and what to try for each problem."""
    # Markup off: summaries carry the machine's own text ("[kworker/0:1]", "[/var]").
    console = console or Console(markup=False)
    for category in Category:
        group = sorted((r for r in runs if r.category is category), key=lambda r: r.check_id)
        if not group:
            continue
        table = Table(title=category.label.capitalize(), title_justify="left", expand=False)
        table.add_column("", width=1)
        table.add_column("check")
        table.add_column("status")
        table.add_column("summary")
        for r in group:
            mark, style = STATUS_MARK[r.status]
            table.add_row(
                Text(mark, style=style), r.check_id, Text(r.status.label, style=style), r.summary
            )
        console.print(table)
    problems = [r for r in runs if r.remediation]
    if problems:
        console.print(Text("What to try", style="bold"))
        for r in problems:
            console.print(Text.assemble("  ", (r.check_id, "bold"), f": {r.remediation}"))
    counts = {s: sum(1 for r in runs if r.status is s) for s in CheckStatus}
    console.print(", ".join(f"{n} {s.label}" for s, n in counts.items() if n) or "no checks run")


def show_catalog(checks: Mapping[str, Check[Any, Any]]) -> None:
    table = Table(title=f"remdiag checks ({len(checks)})", title_justify="left")
    for column in ("check", "category", "every", "title"):
        table.add_column(column)
    for check in sorted(checks.values(), key=lambda c: (c.category, c.id)):
        every = interval_text(check.default_interval.total_seconds())
        table.add_row(check.id, check.category.label, every, check.title)
    Console(markup=False).print(table)
