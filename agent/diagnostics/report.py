"""How `remdiag-agent history` shows the runs to the person at the PC: a rich table.

Kept apart so the running agent never loads rich.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.diagnostics.history import HistoryRow
from remdiag.vocabulary import DiagnosticState

STATE_STYLE = {
    DiagnosticState.DONE: "green",
    DiagnosticState.FAILED: "bold red",
    DiagnosticState.REFUSED: "yellow",
    DiagnosticState.RUNNING: "cyan",
}


def row_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "action": row.action,
        "args": row.args,
        "requested_by": row.requested_by,
        "ticket_id": row.ticket_id or None,
        "remediation": row.remediation,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "state": row.state.label,
        "error": row.error,
        "output_bytes": row.output_bytes,
        "truncated": row.truncated,
    }


def show_history(rows: list[HistoryRow], console: Console | None = None) -> None:
    console = console or Console(markup=False)  # arguments and errors are data, not markup
    table = Table(title="Diagnostics run on this PC (newest first)", title_justify="left")
    for column in ("when (UTC)", "action", "arguments", "asked by", "ticket", "result"):
        table.add_column(column)
    for row in rows:
        kind = " (changes the PC)" if row.remediation else ""
        result = Text(row.state.label, style=STATE_STYLE.get(row.state, ""))
        if row.error:
            result.append(f": {row.error}")
        table.add_row(
            row.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.action + kind,
            json.dumps(row.args, separators=(", ", "=")).strip("{}").replace('"', ""),
            row.requested_by or "-",
            str(row.ticket_id) if row.ticket_id else "-",
            result,
        )
    console.print(table)
