"""How the CLI shows agents and tickets: rich tables and plain JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from collector.lifecycle import AWAITING_RESPONSE
from remdiag.v1 import console_pb2
from remdiag.vocabulary import (
    Category,
    CheckStatus,
    DiagnosticState,
    Priority,
    Severity,
    TicketState,
    Tier,
)

STATE_STYLE = {
    TicketState.NEW: "bold red",
    TicketState.RESOLVED: "green",
    TicketState.CLOSED: "dim",
}
STATUS_STYLE = {
    CheckStatus.OK: "green",
    CheckStatus.WARNING: "yellow",
    CheckStatus.CRITICAL: "bold red",
    CheckStatus.UNKNOWN: "magenta",
}


def as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def when(ts: Timestamp, now: datetime | None = None) -> str:
    """'12s ago', '5m ago', ... for a set timestamp; '-' for an unset one."""
    if ts.seconds == 0 and ts.nanos == 0:
        return "-"
    elapsed = ((now or datetime.now(UTC)) - ts.ToDatetime(tzinfo=UTC)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if elapsed >= size:
            return f"{int(elapsed // size)}{unit} ago"
    return f"{max(0, int(elapsed))}s ago"


def agents_table(agents: list[console_pb2.Agent]) -> Table:
    table = Table(title=f"Machines ({len(agents)})", title_justify="left")
    columns = (
        "agent id",
        "hostname",
        "os",
        "tags",
        "connected",
        "last seen",
        "open tickets",
        "policy",
    )
    for column in columns:
        table.add_column(column)
    for a in agents:
        table.add_row(
            a.agent_id,
            a.hostname,
            a.os,
            " ".join(a.tags),
            Text("yes", style="green") if a.connected else Text("no", style="yellow"),
            when(a.last_seen_at),
            str(a.open_tickets),
            policy_cell(a),
        )
    return table


def short_version(version: int) -> str:
    """A policy version as the tables show it: its first 8 hex digits ('-' for none)."""
    return f"{version:016x}"[:8] if version else "-"


def policy_cell(a: console_pb2.Agent) -> Text:
    """The policy version the machine should run; marked when it runs another one (behind)."""
    if not a.policy_version:
        return Text("-")
    if a.running_policy_version == a.policy_version:
        return Text(short_version(a.policy_version))
    return Text(
        f"{short_version(a.policy_version)} (runs {short_version(a.running_policy_version)}, "
        "behind)",
        style="yellow",
    )


def due(t: console_pb2.Ticket, now: datetime | None = None) -> Text:
    """The deadline the ticket races next: 'in 3h' or, in red, '12m late'; '-' when done."""
    state = TicketState(t.state)
    if not state.is_open or not t.HasField("resolve_by"):
        return Text("-")
    deadline = t.resolve_by
    if state in AWAITING_RESPONSE and t.respond_by.ToDatetime() < t.resolve_by.ToDatetime():
        deadline = t.respond_by
    left = (deadline.ToDatetime(tzinfo=UTC) - (now or datetime.now(UTC))).total_seconds()
    span = _span(abs(left))
    if t.sla_paused:
        return Text(f"paused ({span} left)", style="cyan")
    return Text(f"in {span}") if left >= 0 else Text(f"{span} late", style="bold red")


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _flags(t: console_pb2.Ticket) -> str:
    flags = [("breached", t.breached), ("flapping", t.flapping), ("reopened", t.reopen_count)]
    return " ".join(name for name, on in flags if on)


def tickets_table(tickets: list[console_pb2.Ticket], title: str = "Tickets") -> Table:
    table = Table(title=f"{title} ({len(tickets)})", title_justify="left")
    columns = ("id", "state", "prio", "tier", "due", "assignee", "machine", "check", "opened")
    for column in (*columns, "flags"):
        table.add_column(column)
    for t in tickets:
        state = TicketState(t.state)
        table.add_row(
            str(t.id),
            Text(state.label, style=STATE_STYLE.get(state, "")),
            Priority(t.priority).name if t.priority else "-",
            Tier(t.tier).name if t.tier else "-",
            due(t),
            t.assignee or "-",
            t.hostname,
            t.check_id,
            when(t.opened_at),
            Text(_flags(t), style="yellow"),
        )
    return table


def _utc_text(ts: Timestamp) -> str:
    return f"{ts.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M} UTC"


def _met(ts: Timestamp, what: str) -> str:
    return f"   ({what} {_utc_text(ts)})" if ts.seconds else ""


def ticket_view(detail: console_pb2.TicketDetail) -> RenderableType:
    t = detail.ticket
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("ticket", f"{t.id}: {t.title}")
    state = TicketState(t.state)
    flags = _flags(t)
    head.add_row("state", state.label + (f" ({flags})" if flags else ""))
    head.add_row("assignee", t.assignee or "nobody yet")
    head.add_row("severity", Severity(t.severity).label)
    if t.priority:
        head.add_row("priority", f"{Priority(t.priority).name}, tier {Tier(t.tier).name}")
    if t.HasField("respond_by"):
        responded = _met(t.acknowledged_at, "responded")
        head.add_row("respond by", _utc_text(t.respond_by) + responded)
        head.add_row("resolve by", f"{_utc_text(t.resolve_by)}   due: {due(t)}")
    if t.sla_paused:
        head.add_row("SLA", "paused: a maintenance window covers the machine")
    if t.resolved_by:
        head.add_row("resolved", f"{_utc_text(t.resolved_at)} by {t.resolved_by}")
    if t.HasField("closed_at"):
        head.add_row("closed", _utc_text(t.closed_at))
    head.add_row("category", Category(t.category).label)
    head.add_row("machine", f"{t.hostname} ({t.agent_id})")
    head.add_row("check", t.check_id)
    head.add_row("opened", f"{t.opened_at.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M:%S} UTC")
    head.add_row("failures", str(t.failure_count))
    parts: list[RenderableType] = [head]
    if detail.HasField("evidence"):
        e = detail.evidence
        evidence = Table(title="Evidence (latest failing result)", title_justify="left")
        evidence.add_column("status")
        evidence.add_column("summary")
        evidence.add_column("observed")
        status = CheckStatus(e.status)
        evidence.add_row(
            Text(status.label, style=STATUS_STYLE[status]), e.summary, when(e.observed_at)
        )
        parts.append(evidence)
        if e.remediation:
            parts.append(Text(f"What to try first: {e.remediation}"))
    timeline = Table(title="Timeline", title_justify="left")
    for column in ("when", "actor", "event", "detail"):
        timeline.add_column(column)
    for ev in detail.events:
        timeline.add_row(
            f"{ev.at.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M:%S}", ev.actor, ev.kind, ev.message
        )
    parts.append(timeline)
    if detail.diagnostics:
        parts.append(diagnostics_table(list(detail.diagnostics)))
        for d in detail.diagnostics:
            if d.HasField("output"):
                parts.append(Text(f"{d.action} ({d.requested_by}):", style="bold"))
                parts.append(JSON(json.dumps(as_json(d.output))))
    return Group(*parts)


REPORT_CSV_HEADER = ("section", "key", "value")
REPORT_COUNTS = (  # (field of Report, table title, first column)
    ("by_category", "By category", "category"),
    ("by_priority", "By priority", "priority"),
    ("by_tier", "By tier", "tier"),
    ("by_check", "By check", "check"),
    ("by_machine", "Top machines", "machine"),
)


def report_json(report: console_pb2.Report) -> dict[str, Any]:
    """The report as JSON, zeros included (a missing number would read as unknown)."""
    return json_format.MessageToDict(
        report, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def report_csv_rows(report: console_pb2.Report) -> list[tuple[str, str, str]]:
    """One flat table (section, key, value) a spreadsheet opens as is.

    Sections: `period` (since, until: ISO 8601 UTC), `summary` (counts; rates and SLA
    compliance as fractions from 0 to 1), `first_response` and `resolution` (count,
    median_seconds, p90_seconds), then one row per key of by_category, by_priority, by_tier,
    by_check, by_machine and per_day (a YYYY-MM-DD UTC day).
    """
    period = (("since", report.since), ("until", report.until))
    rows = [("period", key, _utc(ts).isoformat()) for key, ts in period]
    summary = (
        "opened",
        "resolved",
        "resolution_rate",
        "auto_resolved",
        "resolved_by_technician",
        "reopened",
        "breached",
        "response_sla_compliance",
        "resolution_sla_compliance",
    )
    rows += [("summary", key, _number(getattr(report, key))) for key in summary]
    for section in ("first_response", "resolution"):
        stats = getattr(report, section)
        for key in ("count", "median_seconds", "p90_seconds"):
            rows.append((section, key, _number(getattr(stats, key))))
    for section in (*(name for name, _, _ in REPORT_COUNTS), "per_day"):
        rows += [(section, c.key, str(c.count)) for c in getattr(report, section)]
    return rows


def report_view(report: console_pb2.Report) -> RenderableType:
    since, until = _utc(report.since), _utc(report.until)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("opened", str(report.opened))
    head.add_row("resolved", f"{report.resolved} ({_share(report.resolution_rate, report)})")
    head.add_row("  automatically", str(report.auto_resolved))
    head.add_row("  by a technician", str(report.resolved_by_technician))
    head.add_row("reopened", str(report.reopened))
    head.add_row("breached", str(report.breached))
    for label, stats in (
        ("first response", report.first_response),
        ("time to resolve", report.resolution),
    ):
        head.add_row(label, _stats(stats))
    head.add_row("response SLA kept", _share(report.response_sla_compliance, report))
    head.add_row("resolution SLA kept", _share(report.resolution_sla_compliance, report))
    title = Text(
        f"Support record, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC "
        "(tickets opened in the period, as they stand now)",
        style="bold",
    )
    tables = [
        _counts_table(title, column, getattr(report, section))
        for section, title, column in REPORT_COUNTS
    ]
    return Group(title, head, Columns(tables), _per_day_table(report))


def _counts_table(title: str, column: str, counts: Any) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(column)
    table.add_column("tickets", justify="right")
    for c in counts:
        table.add_row(c.key, str(c.count))
    if not counts:
        table.add_row("-", "0")
    return table


def _per_day_table(report: console_pb2.Report) -> Table:
    table = Table(title="Opened per day (UTC)", title_justify="left")
    table.add_column("day")
    table.add_column("tickets", justify="right")
    table.add_column("")
    most = max((c.count for c in report.per_day), default=0)
    for c in report.per_day:
        bar = "#" * (round(30 * c.count / most) if most else 0)
        table.add_row(c.key, str(c.count), Text(bar, style="cyan"))
    return table


def _utc(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _number(value: float) -> str:
    """Whole numbers without a decimal point; fractions rounded to 4 places."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _share(rate: float, report: console_pb2.Report) -> str:
    return f"{rate:.0%}" if report.opened else "-"


def _stats(stats: console_pb2.DurationStats) -> str:
    if not stats.count:
        return "-"
    return (
        f"median {_duration(stats.median_seconds)}, p90 {_duration(stats.p90_seconds)} "
        f"({stats.count} ticket{'' if stats.count == 1 else 's'})"
    )


def _duration(seconds: float) -> str:
    """'45s', '12m 30s', '3h 05m', '2d 4h': the two largest units."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def windows_table(windows: list[console_pb2.MaintenanceWindow]) -> Table:
    """Maintenance windows; `active` and `next start` are as of the collector's clock."""
    table = Table(title=f"Maintenance windows ({len(windows)})", title_justify="left")
    for column in ("id", "name", "when", "duration", "covers", "active", "next start", "by"):
        table.add_column(column)
    for w in windows:
        table.add_row(
            str(w.id),
            w.name,
            f"{w.cron} ({w.timezone})" if w.cron else _utc_text(w.starts_at),
            _duration(w.duration_minutes * 60.0),
            _window_scope(w),
            Text("yes", style="bold yellow") if w.active else Text("no"),
            _utc_text(w.next_start) if w.HasField("next_start") else "-",
            w.created_by,
        )
    return table


def _window_scope(w: console_pb2.MaintenanceWindow) -> str:
    if w.all_machines:
        return "all machines"
    parts: list[str] = []
    if w.tags:
        parts.append("tags " + ", ".join(w.tags))
    if w.agent_ids:
        parts.append("machines " + ", ".join(w.agent_ids))
    return "; ".join(parts)


DIAGNOSTIC_STYLE = {
    DiagnosticState.QUEUED: "cyan",
    DiagnosticState.SENT: "cyan",
    DiagnosticState.RUNNING: "yellow",
    DiagnosticState.DONE: "green",
    DiagnosticState.FAILED: "bold red",
    DiagnosticState.EXPIRED: "dim",
    DiagnosticState.REFUSED: "bold red",
}


def diagnostic_line(now: console_pb2.Diagnostic, before: console_pb2.Diagnostic | None) -> Text:
    """One line per change of a run: its new state, or its latest progress."""
    state = DiagnosticState(now.state)
    line = Text(f"{now.action} on {now.hostname}: ")
    line.append(state.label, style=DIAGNOSTIC_STYLE[state])
    if state is DiagnosticState.QUEUED and before is None:
        line.append(f" (id {now.id}; waits until {_utc_text(now.expires_at)})")
    elif now.error:
        line.append(f": {now.error}")
    elif now.progress and (before is None or now.progress != before.progress):
        line.append(f": {now.progress}")
    if now.truncated:
        line.append(" (output cut at the action's cap)", style="yellow")
    return line


def diagnostics_table(found: list[console_pb2.Diagnostic]) -> Table:
    table = Table(title=f"Diagnostics ({len(found)})", title_justify="left")
    for column in ("id", "machine", "action", "state", "by", "ticket", "asked", "detail"):
        table.add_column(column)
    for d in found:
        state = DiagnosticState(d.state)
        table.add_row(
            d.id[:8],
            d.hostname,
            d.action,
            Text(state.label, style=DIAGNOSTIC_STYLE[state]),
            d.requested_by,
            str(d.ticket_id) if d.ticket_id else "-",
            when(d.requested_at),
            d.error or d.progress,
        )
    return table


def actions_table(found: list[console_pb2.Action]) -> Table:
    table = Table(title=f"Diagnostic actions ({len(found)})", title_justify="left")
    for column in ("action", "what it does", "arguments", "timeout"):
        table.add_column(column)
    for a in found:
        arguments = ", ".join(
            f"{x.name}" + ("" if x.required else f"={x.default_json}") for x in a.arguments
        )
        summary = a.summary + (" (remediation: opt-in)" if a.remediation else "")
        table.add_row(a.name, summary, arguments or "-", f"{a.timeout_seconds} s")
    return table


def _target_text(t: console_pb2.TaskTarget) -> str:
    if t.all_machines:
        return "all machines"
    parts: list[str] = []
    if t.tags:
        parts.append("tags " + ", ".join(t.tags))
    if t.agent_ids:
        parts.append("machines " + ", ".join(t.agent_ids))
    return "; ".join(parts)


def _step_text(step: console_pb2.TaskStep) -> str:
    args = json_format.MessageToDict(step.args)
    pairs = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(args.items()))
    return f"{step.action} {pairs}".strip()


def tasks_table(found: list[console_pb2.MaintenanceTask]) -> Table:
    """Maintenance tasks; `next run` is the next occurrence (starts spread over the window)."""
    table = Table(title=f"Maintenance tasks ({len(found)})", title_justify="left")
    for column in ("id", "name", "steps", "when", "window", "target", "next run", "last run"):
        table.add_column(column)
    for t in found:
        table.add_row(
            str(t.id),
            t.name,
            "\n".join(_step_text(s) for s in t.steps),
            f"{t.cron} ({t.timezone})",
            _duration(t.window_minutes * 60.0),
            _target_text(t.target),
            _utc_text(t.next_run) if t.HasField("next_run") else "-",
            _utc_text(t.last_run) if t.HasField("last_run") else "-",
        )
    return table


TASK_OUTCOME_STYLE = {"pending": "cyan", "done": "green", "failed": "bold red", "missed": "yellow"}


def task_history_table(history: console_pb2.TaskHistory) -> Table:
    """A task's runs, newest occurrence first: one row per machine, its steps' states."""
    t = history.task
    table = Table(title=f"Task {t.id} {t.name}: {len(history.results)} runs", title_justify="left")
    for column in ("run", "scheduled for", "machine", "outcome", "steps", "ticket"):
        table.add_column(column)
    for r in history.results:
        steps = "\n".join(
            f"{d.action}: {DiagnosticState(d.state).label}" + (f" ({d.error})" if d.error else "")
            for d in r.steps
        )
        table.add_row(
            str(r.run_id),
            _utc_text(r.scheduled_for),
            r.hostname or r.agent_id,
            Text(r.outcome, style=TASK_OUTCOME_STYLE.get(r.outcome, "")),
            steps or "-",
            str(r.ticket_id) if r.ticket_id else "-",
        )
    return table


def recurring_table(found: list[console_pb2.RecurringTicket]) -> Table:
    table = Table(title=f"Recurring preventive tickets ({len(found)})", title_justify="left")
    for column in ("id", "name", "title", "when", "target", "category", "severity", "next open"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r.id),
            r.name,
            r.title,
            f"{r.cron} ({r.timezone})" if r.cron else f"every {r.every_days} days",
            _target_text(r.target),
            Category(r.category).label,
            Severity(r.severity).label,
            _utc_text(r.next_open) if r.HasField("next_open") else "-",
        )
    return table
