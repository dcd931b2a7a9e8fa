"""Proto <-> domain conversion for the collector's servicers, with the input checks they need."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from collector.desk import TicketDetail, TicketRow
from collector.fleet import AgentView, InventoryUpdate, MachineInfo
from collector.ingest import IncomingResult
from collector.limits import LimitSettings
from collector.store.models import CheckResult, CheckState
from remdiag.v1 import agent_pb2, common_pb2, console_pb2
from remdiag.vocabulary import Category, CheckStatus

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


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def struct_to_dict(value: Struct) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(value)
    except ValueError as exc:  # Infinity and NaN have no JSON form
        raise InvalidMessageError(f"a number that is not finite: {exc}") from None


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


def incoming_result(
    position: int, result: common_pb2.CheckResult, now: datetime, limits: LimitSettings
) -> IncomingResult:
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
    thresholds = struct_to_dict(result.thresholds)
    _storable_json(f"{where}.thresholds", thresholds)
    values = [_value(f"{where}.values[{i}]", v, limits) for i, v in enumerate(result.values)]
    _storable_json(f"{where}.values", values)
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


def sequence_number(value: int) -> int:
    if not 0 < value <= MAX_SEQUENCE:
        raise InvalidMessageError(f"sequence must be between 1 and {MAX_SEQUENCE}")
    return value


def _value(where: str, value: common_pb2.MeasuredValue, limits: LimitSettings) -> dict[str, Any]:
    _bounded(f"{where}.name", value.name, limits.max_id_chars)
    _bounded(f"{where}.unit", value.unit, limits.max_id_chars)
    _bounded(f"{where}.text", value.text, limits.max_text_chars)
    kind = value.WhichOneof("value")
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
