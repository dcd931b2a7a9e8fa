"""The audit log: one row per console action and per refused console call, and reading it back.

Actions are the ConsoleService calls that change something, and RunDiagnostic; reads (List*,
Get*) are not recorded unless they are refused. The interceptor (collector.auth) writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import AuditEntry

ANONYMOUS = "anonymous"
"""The actor of a call that carried no valid console token."""
OK = "ok"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TARGET_CHARS = 255
MAX_DETAIL_CHARS = 500
_TARGET_FIELDS = (
    ("agent_id", "agent"),
    ("ticket_id", "ticket"),
    ("window_id", "window"),
    ("task_id", "task"),
    ("recurring_id", "recurring ticket"),
)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    outcome: str
    detail: str


def is_read(method: str) -> bool:
    """A call that only reads (List*, Get*): audited only when it is refused."""
    return method.startswith(("List", "Get"))


def describe(method: str, request: Any, response: Any = None) -> tuple[str, str]:
    """The target ("ticket 42", "agent <id>", "window 3") and a short detail of a console call,
    from its request (and its response, when it succeeded)."""
    target = ""
    fields = getattr(getattr(request, "DESCRIPTOR", None), "fields_by_name", {})
    for field, kind in _TARGET_FIELDS:
        value = getattr(request, field, None) if field in fields else None
        if value:
            target = f"{kind} {value}"
            break
    detail = ""
    if method == "UpdateTicket":
        detail = request.WhichOneof("action") or ""
    elif method == "TagAgent":
        detail = " ".join([*(f"+{t}" for t in request.add), *(f"-{t}" for t in request.remove)])
    elif method == "CreateWindow":
        if response is not None and response.id:
            target = f"window {response.id}"
        detail = request.window.name
    elif method == "RunDiagnostic":
        detail = request.action
    elif method == "CreateTask":
        if response is not None and response.id:
            target = f"task {response.id}"
        detail = request.task.name
    elif method == "CreateRecurringTicket":
        if response is not None and response.id:
            target = f"recurring ticket {response.id}"
        detail = request.recurring.name
    elif method in ("GetPolicy", "DeletePolicy"):
        target = f"policy {request.name}"
    elif method == "ApplyPolicy":
        names = [s.fields["name"].string_value for s in request.specs if "name" in s.fields]
        target = f"policy {', '.join(names)}"
        if request.dry_run:
            detail = "dry run"
        elif response is not None:
            detail = f"{response.machines_affected} machines affected"
    elif method == "GetEffectivePolicy":
        target = f"machine {request.machine}"
    return target[:MAX_TARGET_CHARS], detail[:MAX_DETAIL_CHARS]


def record(session: Session, entry: Entry) -> None:
    session.add(
        AuditEntry(
            at=entry.at,
            actor=entry.actor[:64],
            role=entry.role[:16],
            action=entry.action[:64],
            target=entry.target[:MAX_TARGET_CHARS],
            outcome=entry.outcome[:32],
            detail=entry.detail[:MAX_DETAIL_CHARS],
        )
    )


def list_entries(
    session: Session,
    *,
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditEntry]:
    """The newest entries first, narrowed by actor, action and start time."""
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(session.scalars(query))
