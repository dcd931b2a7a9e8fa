"""Keeps the database bounded: rolls raw results up by hour, then prunes what is past its age.

Rules ([retention] in the collector's config):

- a raw check result older than `raw_days` (both observed and received that long ago) is folded
  into its hour's rollup (per machine, check and hour: counts by status, first and last observed,
  the last status, min / max / sum / count of each numeric value) and deleted, in the same
  transaction: each result is counted exactly once, so the sweep is idempotent;
- a result that a ticket shows as its evidence (tickets.evidence_result_id) or that a check state
  names as its latest failure (check_states.last_failure_id) is never deleted, and not rolled up
  while it is kept (it is folded in on a later sweep, once nothing points at it);
- rollups older than `rollup_days`, finished diagnostics older than `diagnostics_days`, finished
  maintenance task runs scheduled more than `task_runs_days` ago and audit entries older than
  `audit_days` are deleted; notifications are pruned by collector/notify.py
  (`[notify] keep_days`); tickets and their events are kept.

Work goes in batches of `batch_size` rows, one short transaction each. Results are walked in id
order from the oldest (a keyset, never a scan of the whole table) until the first one received
within `raw_days`. With several collectors on PostgreSQL each batch locks its rows with
SKIP LOCKED, so two sweeps at once share the work instead of counting anything twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.store.models import (
    AuditEntry,
    CheckResult,
    CheckRollup,
    CheckState,
    Diagnostic,
    TaskRun,
    Ticket,
)
from collector.store.runner import Store
from collector.tasks import PENDING
from remdiag.vocabulary import CheckStatus, DiagnosticState

log = logging.getLogger(__name__)

FINAL_DIAGNOSTIC_STATES = tuple(int(s) for s in DiagnosticState if s.is_final)
STATUS_COLUMNS = {
    int(CheckStatus.OK): "ok_count",
    int(CheckStatus.WARNING): "warning_count",
    int(CheckStatus.CRITICAL): "critical_count",
    int(CheckStatus.UNKNOWN): "unknown_count",
}


class RetentionSettings(BaseModel):
    """How long the collector keeps what ([retention])."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    raw_days: float = Field(14.0, gt=0, le=3650, allow_inf_nan=False)
    rollup_days: float = Field(400.0, gt=0, le=36500, allow_inf_nan=False)
    diagnostics_days: float = Field(90.0, gt=0, le=36500, allow_inf_nan=False)
    audit_days: float = Field(365.0, gt=0, le=36500, allow_inf_nan=False)
    task_runs_days: float = Field(365.0, gt=0, le=36500, allow_inf_nan=False)
    """Finished runs of maintenance tasks (a task's history); a pending run is kept."""
    sweep_minutes: float = Field(60.0, ge=1, le=7 * 24 * 60, allow_inf_nan=False)
    batch_size: int = Field(2000, ge=10, le=100_000)


@dataclass
class RetentionOutcome:
    rolled_up: int = 0
    """Raw results folded into rollups and deleted."""
    kept_as_evidence: int = 0
    """Old results kept because a ticket or a check state points at them."""
    rollups_pruned: int = 0
    diagnostics_pruned: int = 0
    task_runs_pruned: int = 0
    audit_pruned: int = 0
    batches: int = 0


@dataclass
class _Batch:
    last_id: int
    rolled_up: int
    kept: int
    done: bool


@dataclass
class _Hour:
    counts: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    last_status: int = 0
    values: dict[str, dict[str, Any]] = field(default_factory=dict)


async def retention_sweep(
    store: Store, settings: RetentionSettings, now: datetime | None = None
) -> RetentionOutcome:
    """One sweep at `now` (the clock by default): roll up and prune, batch by batch."""
    at = now or datetime.now(UTC)
    outcome = RetentionOutcome()
    if not settings.enabled:
        return outcome
    raw_cutoff = at - timedelta(days=settings.raw_days)
    after = 0
    while True:
        batch = await store.run(
            partial(roll_up_batch, cutoff=raw_cutoff, after_id=after, limit=settings.batch_size)
        )
        outcome.batches += 1
        outcome.rolled_up += batch.rolled_up
        outcome.kept_as_evidence += batch.kept
        if batch.done:
            break
        after = batch.last_id
    for model, condition, attribute in (
        (
            CheckRollup,
            CheckRollup.hour < at - timedelta(days=settings.rollup_days),
            "rollups_pruned",
        ),
        (
            Diagnostic,
            (Diagnostic.finished_at < at - timedelta(days=settings.diagnostics_days))
            & Diagnostic.state.in_(FINAL_DIAGNOSTIC_STATES),
            "diagnostics_pruned",
        ),
        (
            TaskRun,
            (TaskRun.scheduled_for < at - timedelta(days=settings.task_runs_days))
            & (TaskRun.outcome != PENDING),
            "task_runs_pruned",
        ),
        (AuditEntry, AuditEntry.at < at - timedelta(days=settings.audit_days), "audit_pruned"),
    ):
        while True:
            deleted = await store.run(
                partial(delete_batch, model=model, condition=condition, limit=settings.batch_size)
            )
            outcome.batches += 1
            setattr(outcome, attribute, getattr(outcome, attribute) + deleted)
            if deleted < settings.batch_size:
                break
    if (
        outcome.rolled_up
        or outcome.rollups_pruned
        or outcome.diagnostics_pruned
        or outcome.task_runs_pruned
        or outcome.audit_pruned
    ):
        log.info(
            "retention: %d results rolled up (%d kept as evidence), %d rollups, "
            "%d diagnostics, %d task runs, %d audit entries pruned",
            outcome.rolled_up,
            outcome.kept_as_evidence,
            outcome.rollups_pruned,
            outcome.diagnostics_pruned,
            outcome.task_runs_pruned,
            outcome.audit_pruned,
        )
    return outcome


def roll_up_batch(session: Session, cutoff: datetime, after_id: int, limit: int) -> _Batch:
    """Fold up to `limit` results past `cutoff` with ids above `after_id` into their hours'
    rollups and delete them; `done` once the walk reaches results received after `cutoff`."""
    query = (
        select(
            CheckResult.id,
            CheckResult.agent_id,
            CheckResult.check_id,
            CheckResult.status,
            CheckResult.values,
            CheckResult.observed_at,
            CheckResult.received_at,
        )
        .where(CheckResult.id > after_id)
        .order_by(CheckResult.id)
        .limit(limit)
    )
    rows = session.execute(_skip_locked(session, query)).all()
    if not rows:
        return _Batch(after_id, 0, 0, True)
    done = len(rows) < limit
    old = []
    for row in rows:
        if row.received_at >= cutoff:
            done = True  # ids follow arrival: what comes after is recent too
            break
        if row.observed_at < cutoff:
            old.append(row)
    ids = [row.id for row in old]
    protected = _protected(session, ids) if ids else set()
    hours: dict[tuple[str, str, datetime], _Hour] = {}
    for row in old:
        if row.id in protected:
            continue
        key = (row.agent_id, row.check_id, _hour_of(row.observed_at))
        _fold(hours.setdefault(key, _Hour()), row.status, row.observed_at, row.values)
    if hours:
        _merge(session, hours)
        doomed = [row.id for row in old if row.id not in protected]
        # Core, not the ORM: no objects to synchronise, and the statement is compiled once.
        session.connection().execute(delete(CheckResult).where(CheckResult.id.in_(doomed)))
    return _Batch(rows[-1].id, len(old) - len(protected), len(protected), done)


def delete_batch(
    session: Session, model: type[Any], condition: ColumnElement[bool], limit: int
) -> int:
    """Delete up to `limit` rows of `model` matching `condition`; how many went."""
    query = select(model.id).where(condition).order_by(model.id).limit(limit)
    ids = list(session.scalars(_skip_locked(session, query)))
    if ids:
        session.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)


def _skip_locked(session: Session, query: Select[Any]) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query  # SQLite: one writer at a time, one collector per file


def _protected(session: Session, ids: Sequence[int]) -> set[int]:
    evidence = select(Ticket.evidence_result_id).where(Ticket.evidence_result_id.in_(ids))
    failures = select(CheckState.last_failure_id).where(CheckState.last_failure_id.in_(ids))
    return {i for i in session.scalars(evidence.union(failures)) if i is not None}


def _hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _fold(hour: _Hour, status: int, observed_at: datetime, values: Any) -> None:
    column = STATUS_COLUMNS.get(status, "unknown_count")
    hour.counts[column] = hour.counts.get(column, 0) + 1
    if hour.first is None or observed_at < hour.first:
        hour.first = observed_at
    if hour.last is None or observed_at >= hour.last:
        hour.last, hour.last_status = observed_at, status
    for value in values if isinstance(values, list) else ():
        number = value.get("value") if isinstance(value, dict) else None
        if isinstance(number, bool) or not isinstance(number, int | float):
            continue
        if not math.isfinite(number):
            continue
        name = str(value.get("name", ""))
        seen = hour.values.get(name)
        if seen is None:
            hour.values[name] = {
                "unit": str(value.get("unit", "")),
                "min": number,
                "max": number,
                "sum": number,
                "count": 1,
            }
        else:
            seen["min"] = min(seen["min"], number)
            seen["max"] = max(seen["max"], number)
            seen["sum"] += number
            seen["count"] += 1


def _merge(session: Session, hours: dict[tuple[str, str, datetime], _Hour]) -> None:
    """Add `hours` to their rollup rows, creating the missing ones; in key order, so two
    collectors merging at once wait for each other instead of deadlocking."""
    keys = sorted(hours)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    skeletons = []
    for agent_id, check_id, hour in keys:
        folded = hours[(agent_id, check_id, hour)]
        assert folded.first is not None and folded.last is not None
        skeletons.append(
            {
                "agent_id": agent_id,
                "check_id": check_id,
                "hour": hour,
                "ok_count": 0,
                "warning_count": 0,
                "critical_count": 0,
                "unknown_count": 0,
                "first_observed_at": folded.first,
                "last_observed_at": folded.last,
                "last_status": folded.last_status,
                "values": {},
            }
        )
    session.connection().execute(
        insert(CheckRollup).on_conflict_do_nothing(index_elements=["agent_id", "check_id", "hour"]),
        skeletons,
    )
    existing = select(CheckRollup).where(
        tuple_(CheckRollup.agent_id, CheckRollup.check_id, CheckRollup.hour).in_(keys)
    )
    if dialect == "postgresql":
        existing = existing.order_by(
            CheckRollup.agent_id, CheckRollup.check_id, CheckRollup.hour
        ).with_for_update()
    for rollup in session.scalars(existing):
        folded = hours[(rollup.agent_id, rollup.check_id, _hour_of(rollup.hour))]
        assert folded.first is not None and folded.last is not None
        for column, count in folded.counts.items():
            setattr(rollup, column, getattr(rollup, column) + count)
        rollup.first_observed_at = min(rollup.first_observed_at, folded.first)
        if folded.last >= rollup.last_observed_at:
            rollup.last_observed_at, rollup.last_status = folded.last, folded.last_status
        merged = {name: dict(stats) for name, stats in (rollup.values or {}).items()}
        for name, stats in folded.values.items():
            seen = merged.get(name)
            if seen is None:
                merged[name] = dict(stats)
            else:
                seen["min"] = min(seen["min"], stats["min"])
                seen["max"] = max(seen["max"], stats["max"])
                seen["sum"] += stats["sum"]
                seen["count"] += stats["count"]
        rollup.values = merged
