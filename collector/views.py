"""How the CLI shows agents and tickets: rich tables and plain JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from remdiag.v1 import console_pb2
from remdiag.vocabulary import Category, CheckStatus, Priority, Severity, TicketState, Tier

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
    for column in ("agent id", "hostname", "os", "connected", "last seen", "open tickets"):
        table.add_column(column)
    for a in agents:
        table.add_row(
            a.agent_id,
            a.hostname,
            a.os,
            Text("yes", style="green") if a.connected else Text("no", style="yellow"),
            when(a.last_seen_at),
            str(a.open_tickets),
        )
    return table


def tickets_table(tickets: list[console_pb2.Ticket], title: str = "Tickets") -> Table:
    table = Table(title=f"{title} ({len(tickets)})", title_justify="left")
    for column in ("id", "state", "priority", "tier", "machine", "check", "opened", "failures"):
        table.add_column(column)
    for t in tickets:
        state = TicketState(t.state)
        table.add_row(
            str(t.id),
            Text(state.label, style=STATE_STYLE.get(state, "")),
            Priority(t.priority).name if t.priority else "-",
            (Tier(t.tier).name if t.tier else "-") + (" breached" if t.breached else ""),
            t.hostname,
            t.check_id,
            when(t.opened_at),
            str(t.failure_count),
        )
    return table


def ticket_view(detail: console_pb2.TicketDetail) -> RenderableType:
    t = detail.ticket
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("ticket", f"{t.id}: {t.title}")
    head.add_row("state", TicketState(t.state).label)
    head.add_row("severity", Severity(t.severity).label)
    if t.priority:
        head.add_row("priority", f"{Priority(t.priority).name}, starting at {Tier(t.tier).name}")
    if t.HasField("respond_by"):
        head.add_row("respond by", f"{t.respond_by.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M} UTC")
        head.add_row("resolve by", f"{t.resolve_by.ToDatetime(tzinfo=UTC):%Y-%m-%d %H:%M} UTC")
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
    return Group(*parts)
