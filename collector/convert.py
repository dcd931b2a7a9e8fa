"""Proto <-> domain conversion for the collector's servicers, with the input checks they need."""

from __future__ import annotations

import functools
import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from agent.diagnostics.model import ActionInfo
from collector.desk import Sort, TicketDetail, TicketFilter, TicketRow
from collector.diagnostics import DiagnosticView, Update
from collector.fleet import AgentView, InventoryUpdate, MachineInfo
from collector.ingest import IncomingResult
from collector.lifecycle import (
    Action,
    Assign,
    Close,
    Comment,
    Escalate,
    Reopen,
    Resolve,
    Start,
    Take,
)
from collector.limits import LimitSettings
from collector.recurring import RecurringSpec, recurring
from collector.report import Counts, DurationStats, Report
from collector.store.models import (
    AuditEntry,
    CheckResult,
    CheckState,
    MaintenanceTask,
    MaintenanceWindow,
    RecurringTicket,
)
from collector.tasks import RunView, Target, TaskError, TaskSpec, target, task
from collector.windows import WindowError, WindowSpec, is_active, next_start, window
from remdiag.v1 import agent_pb2, common_pb2, console_pb2
from remdiag.vocabulary import (
    Category,
    CheckStatus,
    DiagnosticState,
    Priority,
    Severity,
    TicketState,
    Tier,
)

MAX_JSON_ITEMS = 200
MAX_ID_COLUMN = 64  # check_results.check_id and friends are String(64)
MAX_SEQUENCE = 2**63 - 1  # BIGINT on both engines


class InvalidMessageError(ValueError):
    """An upstream message the collector refuses; the text says which field and why."""


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_timestamp(ts: Timestamp) -> datetime:
    """`ts.ToDatetime(tzinfo=UTC)`, twice as fast (once per result on ingest's hot path); a
    time datetime cannot hold is a ValueError."""
    nanos = ts.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise ValueError(f"Timestamp nanos {nanos} is out of range")
    try:
        return _EPOCH + timedelta(0, ts.seconds, nanos // 1000)
    except OverflowError as exc:
        raise ValueError(f"Timestamp seconds {ts.seconds} is out of range") from exc


def struct_to_dict(value: Struct) -> dict[str, Any]:
    """What json_format.MessageToDict gives, read directly (several times faster: inventories
    are large); a number that is not finite has no JSON form and is refused."""
    return {key: _plain(item) for key, item in value.fields.items()}


def _plain(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise InvalidMessageError(f"a number that is not finite: {number}")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_plain(item) for item in value.list_value.values]
    return None  # null_value, or no value at all


def dict_to_struct(value: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(value)
    return out


def inventory_update(inventory: agent_pb2.Inventory, limits: LimitSettings) -> InventoryUpdate:
    sections = struct_to_dict(inventory.facts)
    _storable_inventory(sections)
    for name in (*sections, *inventory.removed_sections):
        _bounded("inventory section name", name, limits.max_id_chars)
    return InventoryUpdate(
        sections=sections, full=inventory.full, removed=tuple(inventory.removed_sections)
    )


def inventory_digest(inventory: agent_pb2.Inventory) -> str | None:
    """Names a full inventory's content (None for a diff): its facts serialized with map keys
    sorted, so the same facts give the same digest whatever order the agent built them in."""
    if not inventory.full:
        return None
    return hashlib.sha256(inventory.facts.SerializeToString(deterministic=True)).hexdigest()


def machine_info(machine: agent_pb2.MachineIdentity, agent_version: str) -> MachineInfo:
    if not machine.hostname or not machine.machine_id:
        raise InvalidMessageError("machine.hostname and machine.machine_id are required")
    _bounded("machine.hostname", machine.hostname, 255)
    _bounded("machine.machine_id", machine.machine_id, 128)
    for field in ("hostname", "machine_id", "os", "os_version", "architecture"):
        _storable(f"machine.{field}", getattr(machine, field))
    _storable("agent_version", agent_version)
    return MachineInfo(
        hostname=machine.hostname,
        machine_id=machine.machine_id,
        os=machine.os[:64],
        os_version=machine.os_version[:255],
        architecture=machine.architecture[:32],
        agent_version=agent_version[:32],
    )


_STATUSES = {int(s): s for s in CheckStatus}
_CATEGORIES = {int(c): c for c in Category}


def incoming_results(
    batch: agent_pb2.ResultBatch, now: datetime, limits: LimitSettings
) -> list[IncomingResult]:
    """A batch's results, checked: InvalidMessageError if it holds more than
    `limits.max_batch_results` or one of them fails its checks."""
    if len(batch.results) > limits.max_batch_results:
        raise InvalidMessageError(f"a batch holds at most {limits.max_batch_results} results")
    return [incoming_result(i, r, now, limits) for i, r in enumerate(batch.results)]


def incoming_result(
    position: int, result: common_pb2.CheckResult, now: datetime, limits: LimitSettings
) -> IncomingResult:
    """A result of a batch, checked. This is ingest's hot path: a few cheap tests pass nearly
    every result, and only one that fails them is checked field by field for the message."""
    check_id, summary, remediation = result.check_id, result.summary, result.remediation
    status = _STATUSES.get(result.status)
    category = _CATEGORIES.get(result.category)
    text_limit, id_limit = limits.max_text_chars, limits.max_id_chars
    if (
        status is None
        or category is None
        or not check_id
        or len(check_id) > min(id_limit, MAX_ID_COLUMN)
        or len(summary) > text_limit
        or len(remediation) > text_limit
        or len(result.values) > MAX_JSON_ITEMS
        or "\x00" in check_id
        or "\x00" in summary
        or "\x00" in remediation
    ):
        return _checked_result(position, result, now, limits)
    values: list[dict[str, Any]] = []
    for value in result.values:
        name, unit, text = value.name, value.unit, value.text
        if value.WhichOneof("value") == "number":
            measured: float | str | None = value.number
            finite = math.isfinite(value.number)
        else:
            measured, finite = text or None, True
        if (
            not finite
            or len(name) > id_limit
            or len(unit) > id_limit
            or len(text) > text_limit
            or "\x00" in name
            or "\x00" in unit
            or "\x00" in text
        ):
            return _checked_result(position, result, now, limits)
        values.append({"name": name, "value": measured, "unit": unit})
    try:
        observed = from_timestamp(result.observed_at) if result.HasField("observed_at") else now
        # An agent sends the same thresholds with every result of a check: decoded once.
        thresholds = _thresholds(result.thresholds.SerializeToString(deterministic=True))
    except (ValueError, OverflowError):  # InvalidMessageError is a ValueError
        return _checked_result(position, result, now, limits)
    return IncomingResult(
        check_id=check_id,
        category=category,
        status=status,
        summary=summary,
        values=values,
        thresholds=thresholds,
        remediation=remediation,
        observed_at=observed,
    )


def _checked_result(
    position: int, result: common_pb2.CheckResult, now: datetime, limits: LimitSettings
) -> IncomingResult:
    """`incoming_result` field by field: raises InvalidMessageError naming what is wrong."""
    where = f"results[{position}]"
    if not result.check_id:
        raise InvalidMessageError(f"{where}.check_id is empty")
    _bounded(f"{where}.check_id", result.check_id, min(limits.max_id_chars, MAX_ID_COLUMN))
    _bounded(f"{where}.summary", result.summary, limits.max_text_chars)
    _bounded(f"{where}.remediation", result.remediation, limits.max_text_chars)
    try:
        status = CheckStatus(result.status)
        category = Category(result.category)
    except ValueError as exc:
        raise InvalidMessageError(f"{where}: {exc}") from exc
    observed = now
    if result.HasField("observed_at"):
        try:
            observed = from_timestamp(result.observed_at)
        except (ValueError, OverflowError) as exc:
            raise InvalidMessageError(f"{where}.observed_at is out of range") from exc
    for field in ("check_id", "summary", "remediation"):
        _storable(f"{where}.{field}", getattr(result, field))
    try:
        # An agent sends the same thresholds with every result of a check: decoded once.
        thresholds = _thresholds(result.thresholds.SerializeToString(deterministic=True))
    except InvalidMessageError as exc:
        detail = str(exc)  # a path within the thresholds (".key ..."), or a reason
        joint = "" if detail[:1] in (".", "[", " ") else ": "
        raise InvalidMessageError(f"{where}.thresholds{joint}{detail}") from None
    if len(result.values) > MAX_JSON_ITEMS:
        raise InvalidMessageError(f"{where}.values has more than {MAX_JSON_ITEMS} entries")
    values = [_value(f"{where}.values[{i}]", v, limits) for i, v in enumerate(result.values)]
    return IncomingResult(
        check_id=result.check_id,
        category=category,
        status=status,
        summary=result.summary,
        values=values,
        thresholds=thresholds,
        remediation=result.remediation,
        observed_at=observed,
    )


@functools.lru_cache(maxsize=4096)
def _thresholds(serialized: bytes) -> dict[str, Any]:
    """Thresholds (a Struct's bytes) as a dict, shared by every result that carried these
    bytes (collector/ingest.py encodes each shared dict once): never change it."""
    thresholds = struct_to_dict(Struct.FromString(serialized))
    _storable_json("", thresholds)
    return thresholds


def sequence_number(value: int) -> int:
    if not 0 < value <= MAX_SEQUENCE:
        raise InvalidMessageError(f"sequence must be between 1 and {MAX_SEQUENCE}")
    return value


def _value(where: str, value: common_pb2.MeasuredValue, limits: LimitSettings) -> dict[str, Any]:
    _bounded(f"{where}.name", value.name, limits.max_id_chars)
    _bounded(f"{where}.unit", value.unit, limits.max_id_chars)
    _bounded(f"{where}.text", value.text, limits.max_text_chars)
    for part in ("name", "unit", "text"):
        _storable(f"{where}.{part}", getattr(value, part))
    kind = value.WhichOneof("value")
    if kind == "number" and not math.isfinite(value.number):
        raise InvalidMessageError(f"{where}.value holds a number that is not finite")
    measured: float | str | None = value.number if kind == "number" else value.text or None
    return {"name": value.name, "value": measured, "unit": value.unit}


def _storable_inventory(value: Any, field: str = "inventory") -> None:
    """Inventories are large (package lists), so only their content is checked, not size."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessageError(f"{field} holds a number that is not finite")
    if isinstance(value, str):
        _storable(field, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(field, key)
            _storable_inventory(item, f"{field}.{key}")
    elif isinstance(value, list):
        for item in value:
            _storable_inventory(item, field)


def _storable(field: str, text: str) -> None:
    # PostgreSQL text cannot hold NUL; refuse it everywhere so both engines agree.
    if "\x00" in text:
        raise InvalidMessageError(f"{field} contains a NUL character")


def _storable_json(field: str, value: Any) -> None:
    """JSON both engines store: finite numbers, strings without NUL, bounded size."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessageError(f"{field} holds a number that is not finite")
    if isinstance(value, str):
        _storable(field, value)
    elif isinstance(value, dict):
        if len(value) > MAX_JSON_ITEMS:
            raise InvalidMessageError(f"{field} has more than {MAX_JSON_ITEMS} entries")
        for key, item in value.items():
            _storable(field, key)
            _storable_json(f"{field}.{key}", item)
    elif isinstance(value, list):
        if len(value) > MAX_JSON_ITEMS:
            raise InvalidMessageError(f"{field} has more than {MAX_JSON_ITEMS} entries")
        for index, item in enumerate(value):
            _storable_json(f"{field}[{index}]", item)


def _bounded(field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise InvalidMessageError(f"{field} is longer than {limit} characters")


def agent_message(view: AgentView) -> console_pb2.Agent:
    a = view.agent
    return console_pb2.Agent(
        agent_id=a.id,
        hostname=a.hostname,
        os=f"{a.os} {a.os_version}".strip(),
        agent_version=a.agent_version,
        enrolled_at=timestamp(a.enrolled_at),
        last_seen_at=timestamp(a.last_seen_at),
        connected=a.connected,
        last_sequence=a.last_sequence,
        open_tickets=view.open_tickets,
        tags=a.tags or [],
        policy_version=a.policy_version or 0,
        running_policy_version=a.running_policy_version or 0,
    )


def check_state_message(state: CheckState) -> console_pb2.CheckState:
    return console_pb2.CheckState(
        check_id=state.check_id,
        status=state.status,  # type: ignore[arg-type]
        summary=state.summary,
        observed_at=timestamp(state.observed_at),
        consecutive_failures=state.consecutive_failures,
        consecutive_passes=state.consecutive_passes,
    )


def ticket_message(row: TicketRow) -> console_pb2.Ticket:
    t = row.ticket
    return console_pb2.Ticket(
        id=t.id,
        agent_id=t.agent_id,
        hostname=row.hostname,
        check_id=t.check_id,
        category=t.category,  # type: ignore[arg-type]
        severity=t.severity,  # type: ignore[arg-type]
        state=t.state,  # type: ignore[arg-type]
        title=t.title,
        opened_at=timestamp(t.opened_at),
        updated_at=timestamp(t.updated_at),
        resolved_at=timestamp(t.resolved_at),
        failure_count=t.failure_count,
        priority=t.priority,  # type: ignore[arg-type]
        tier=t.tier,  # type: ignore[arg-type]
        respond_by=timestamp(t.respond_by),
        resolve_by=timestamp(t.resolve_by),
        breached=t.response_breached_at is not None or t.resolution_breached_at is not None,
        assignee=t.assignee or "",
        flapping=t.flapping,
        acknowledged_at=timestamp(t.acknowledged_at),
        closed_at=timestamp(t.closed_at),
        sla_paused=t.sla_paused_at is not None,
        reopen_count=t.reopen_count,
        resolved_by=t.resolved_by or "",
    )


TICKET_SORTS = {
    console_pb2.TICKET_SORT_UNSPECIFIED: Sort.URGENCY,
    console_pb2.TICKET_SORT_URGENCY: Sort.URGENCY,
    console_pb2.TICKET_SORT_NEWEST: Sort.NEWEST,
}


def ticket_filter(request: console_pb2.ListTicketsRequest) -> TicketFilter:
    """The queue's filters; an enum value outside the contract is refused, not ignored."""
    if request.sort not in TICKET_SORTS:
        raise InvalidMessageError(f"unknown filter value: sort {request.sort}")
    try:
        return TicketFilter(
            open_only=request.open_only,
            agent_id=request.agent_id,
            states=frozenset(TicketState(v) for v in request.states),
            priorities=frozenset(Priority(v) for v in request.priorities),
            tiers=frozenset(Tier(v) for v in request.tiers),
            categories=frozenset(Category(v) for v in request.categories),
            assignee=request.assignee,
            unassigned_only=request.unassigned_only,
            breached_only=request.breached_only,
            sort=TICKET_SORTS[request.sort],
            limit=request.limit,
        )
    except ValueError as exc:
        raise InvalidMessageError(f"unknown filter value: {exc}") from None


def ticket_action(request: console_pb2.UpdateTicketRequest) -> Action:
    match request.WhichOneof("action"):
        case "take":
            return Take()
        case "assign":
            return Assign(request.assign.assignee)
        case "start":
            return Start()
        case "comment":
            return Comment(request.comment.text)
        case "escalate":
            return Escalate(request.escalate.note)
        case "resolve":
            return Resolve(request.resolve.note)
        case "close":
            return Close(request.close.note)
        case "reopen":
            return Reopen(request.reopen.note)
    raise InvalidMessageError(
        "no action: say take, assign, start, comment, escalate, resolve, close or reopen"
    )


def ticket_detail_message(detail: TicketDetail) -> console_pb2.TicketDetail:
    return console_pb2.TicketDetail(
        ticket=ticket_message(detail.row),
        events=[
            console_pb2.TicketEvent(
                at=timestamp(e.at), actor=e.actor, kind=e.kind, message=e.message
            )
            for e in detail.events
        ],
        evidence=result_message(detail.evidence) if detail.evidence else None,
        diagnostics=[diagnostic_message(d) for d in detail.diagnostics],
    )


def result_message(row: CheckResult) -> common_pb2.CheckResult:
    return common_pb2.CheckResult(
        check_id=row.check_id,
        category=row.category,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        summary=row.summary,
        values=[_value_message(v) for v in row.values],
        thresholds=dict_to_struct(row.thresholds),
        observed_at=timestamp(row.observed_at),
        remediation=row.remediation,
    )


def _value_message(value: dict[str, Any]) -> common_pb2.MeasuredValue:
    measured = value.get("value")
    message = common_pb2.MeasuredValue(name=value["name"], unit=value.get("unit", ""))
    if isinstance(measured, int | float):
        message.number = float(measured)
    elif measured is not None:
        message.text = str(measured)
    return message


def report_message(report: Report) -> console_pb2.Report:
    return console_pb2.Report(
        since=timestamp(report.since),
        until=timestamp(report.until),
        opened=report.opened,
        resolved=report.resolved,
        resolution_rate=report.resolution_rate,
        auto_resolved=report.auto_resolved,
        resolved_by_technician=report.resolved_by_technician,
        reopened=report.reopened,
        by_category=_counts(report.by_category),
        by_check=_counts(report.by_check),
        by_machine=_counts(report.by_machine),
        by_priority=_counts(report.by_priority),
        by_tier=_counts(report.by_tier),
        per_day=_counts(report.per_day),
        first_response=_duration_stats(report.first_response),
        resolution=_duration_stats(report.resolution),
        response_sla_compliance=report.response_sla.rate,
        resolution_sla_compliance=report.resolution_sla.rate,
        breached=report.breached,
    )


def _counts(counts: Counts) -> list[console_pb2.Count]:
    return [console_pb2.Count(key=key, count=count) for key, count in counts]


def _duration_stats(stats: DurationStats) -> console_pb2.DurationStats:
    return console_pb2.DurationStats(
        count=stats.count, median_seconds=stats.median_seconds, p90_seconds=stats.p90_seconds
    )


def window_spec(message: console_pb2.MaintenanceWindow) -> WindowSpec:
    """A validated window from a request; WindowError (a ValueError) says what is wrong."""
    starts_at = None
    if message.HasField("starts_at"):
        try:
            starts_at = from_timestamp(message.starts_at)
        except (ValueError, OverflowError):
            raise WindowError("start time: out of range") from None
    return window(
        name=message.name,
        starts_at=starts_at,
        cron=message.cron or None,
        timezone=message.timezone or "UTC",
        duration=timedelta(minutes=message.duration_minutes),
        all_machines=message.all_machines,
        tags=message.tags,
        agent_ids=message.agent_ids,
    )


def window_message(row: MaintenanceWindow, now: datetime) -> console_pb2.MaintenanceWindow:
    """A stored window, with `active` and `next_start` as of `now` (the server's clock)."""
    spec = WindowSpec.from_row(row)
    return console_pb2.MaintenanceWindow(
        id=row.id,
        name=row.name,
        starts_at=timestamp(row.starts_at),
        cron=row.cron or "",
        timezone=row.timezone,
        duration_minutes=row.duration_minutes,
        all_machines=row.all_machines,
        tags=row.tags,
        agent_ids=row.agent_ids,
        created_at=timestamp(row.created_at),
        created_by=row.created_by,
        active=is_active(spec, now),
        next_start=timestamp(next_start(spec, now)),
    )


AGENT_REPORTS = {
    DiagnosticState.RUNNING,
    DiagnosticState.DONE,
    DiagnosticState.FAILED,
    DiagnosticState.REFUSED,
}


def diagnostic_update(update: agent_pb2.DiagnosticUpdate, limits: LimitSettings) -> Update:
    """An agent's word on one of its diagnostics; its output is checked like an inventory."""
    _bounded("diagnostic.request_id", update.request_id, MAX_ID_COLUMN)
    try:
        state = DiagnosticState(update.state)
    except ValueError:
        raise InvalidMessageError(f"diagnostic.state {update.state} is unknown") from None
    if state not in AGENT_REPORTS:
        raise InvalidMessageError(f"diagnostic.state {state.label} is not the agent's to report")
    _bounded("diagnostic.progress", update.progress, limits.max_text_chars)
    _bounded("diagnostic.error", update.error, limits.max_text_chars)
    output = struct_to_dict(update.output) if update.HasField("output") else None
    if output is not None:
        _storable_inventory(output, "diagnostic.output")
    return Update(
        request_id=update.request_id,
        state=state,
        progress=update.progress,
        output=output,
        error=update.error,
        truncated=update.truncated,
    )


def diagnostic_request_message(view: DiagnosticView) -> agent_pb2.CollectorMessage:
    row = view.row
    return agent_pb2.CollectorMessage(
        diagnostic=agent_pb2.DiagnosticRequest(
            request_id=row.id,
            action=row.action,
            args=dict_to_struct(row.args),
            requested_by=row.requested_by,
            expires_at=timestamp(row.expires_at),
            ticket_id=row.ticket_id or 0,
        )
    )


def diagnostic_message(view: DiagnosticView) -> console_pb2.Diagnostic:
    row = view.row
    return console_pb2.Diagnostic(
        id=row.id,
        agent_id=row.agent_id,
        hostname=view.hostname,
        action=row.action,
        args=dict_to_struct(row.args),
        state=row.state,  # type: ignore[arg-type]
        requested_by=row.requested_by,
        ticket_id=row.ticket_id or 0,
        requested_at=timestamp(row.requested_at),
        expires_at=timestamp(row.expires_at),
        sent_at=timestamp(row.sent_at),
        finished_at=timestamp(row.finished_at),
        progress=row.progress,
        output=dict_to_struct(row.output) if row.output is not None else None,
        error=row.error,
        truncated=row.truncated,
    )


def audit_message(row: AuditEntry) -> console_pb2.AuditEntry:
    return console_pb2.AuditEntry(
        id=row.id,
        at=timestamp(row.at),
        actor=row.actor,
        role=row.role,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        detail=row.detail,
    )


def action_messages(found: list[ActionInfo]) -> list[console_pb2.Action]:
    return [
        console_pb2.Action(
            name=a.name,
            summary=a.summary,
            arguments=[
                console_pb2.ActionArgument(
                    name=x.name,
                    type=x.type,
                    required=x.required,
                    description=x.description,
                    default_json=x.default,
                )
                for x in a.arguments
            ],
            timeout_seconds=math.ceil(a.timeout_seconds),
            remediation=a.remediation,
        )
        for a in found
    ]


def task_target(message: console_pb2.TaskTarget) -> Target:
    """A validated target; TaskError (a ValueError) says what is wrong."""
    return target(all_machines=message.all_machines, tags=message.tags, agent_ids=message.agent_ids)


def _target_message(value: Target) -> console_pb2.TaskTarget:
    return console_pb2.TaskTarget(
        all_machines=value.all_machines, tags=sorted(value.tags), agent_ids=sorted(value.agent_ids)
    )


def task_spec(message: console_pb2.MaintenanceTask) -> TaskSpec:
    """A validated task from a request; TaskError (a ValueError) says what is wrong."""
    steps: list[tuple[str, dict[str, Any]]] = []
    for number, step in enumerate(message.steps, 1):
        try:
            steps.append((step.action, struct_to_dict(step.args)))
        except InvalidMessageError as exc:
            raise TaskError(f"step {number}: args: {exc}") from None
    return task(
        name=message.name,
        steps=steps,
        cron=message.cron,
        timezone=message.timezone or "UTC",
        window_minutes=message.window_minutes,
        target=task_target(message.target),
    )


def task_message(row: MaintenanceTask) -> console_pb2.MaintenanceTask:
    spec = TaskSpec.from_row(row)
    return console_pb2.MaintenanceTask(
        id=row.id,
        name=row.name,
        steps=[
            console_pb2.TaskStep(action=s.action, args=dict_to_struct(s.args)) for s in spec.steps
        ],
        cron=row.cron,
        timezone=row.timezone,
        window_minutes=row.window_minutes,
        target=_target_message(spec.target),
        created_at=timestamp(row.created_at),
        created_by=row.created_by,
        next_run=timestamp(row.next_run_at),
        last_run=timestamp(row.last_run_at),
    )


def task_history_message(row: MaintenanceTask, runs: list[RunView]) -> console_pb2.TaskHistory:
    return console_pb2.TaskHistory(
        task=task_message(row),
        results=[
            console_pb2.TaskRunResult(
                run_id=v.run.id,
                scheduled_for=timestamp(v.run.scheduled_for),
                agent_id=v.run.agent_id,
                hostname=v.hostname,
                steps=[diagnostic_message(d) for d in v.steps],
                outcome=v.run.outcome,
                ticket_id=v.run.ticket_id or 0,
            )
            for v in runs
        ],
    )


def recurring_spec(message: console_pb2.RecurringTicket) -> RecurringSpec:
    """A validated recurring ticket from a request (an unset category is software, an unset
    severity warning); TaskError (a ValueError) says what is wrong."""
    return recurring(
        name=message.name,
        title=message.title,
        description=message.description,
        cron=message.cron or None,
        timezone=message.timezone or "UTC",
        every_days=message.every_days or None,
        target=task_target(message.target),
        category=message.category or Category.SOFTWARE,
        severity=message.severity or Severity.WARNING,
    )


def recurring_message(row: RecurringTicket) -> console_pb2.RecurringTicket:
    spec = RecurringSpec.from_row(row)
    return console_pb2.RecurringTicket(
        id=row.id,
        name=row.name,
        title=row.title,
        description=row.description,
        cron=row.cron or "",
        timezone=row.timezone,
        every_days=row.every_days or 0,
        target=_target_message(spec.target),
        category=row.category,  # type: ignore[arg-type]
        severity=row.severity,  # type: ignore[arg-type]
        next_open=timestamp(row.next_open_at),
        last_opened=timestamp(row.last_opened_at),
        created_at=timestamp(row.created_at),
        created_by=row.created_by,
    )
