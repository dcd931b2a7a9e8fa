"""Stores a batch of check results and applies the ticket rules to it, in one transaction."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from collector.desk import mark_reopened, new_ticket, place_ticket
from collector.engine import (
    FlappingChanged,
    OpenTicket,
    RecordFailure,
    ResolveTicket,
    RuleState,
    TicketRules,
    counts_only,
    decide,
)
from collector.store.models import Agent, CheckState, MaintenanceWindow, Ticket
from collector.store.results import STATE_COLUMNS, insert_results, insert_states, update_states
from collector.timeline import SYSTEM_ACTOR, record
from collector.triage import DeskSettings
from collector.windows import in_maintenance
from remdiag.vocabulary import Category, CheckStatus, Severity, TicketState

DEFAULT_DESK = DeskSettings()


class IncomingResult(NamedTuple):
    """A result as received and checked (collector/convert.py). A named tuple, not a frozen
    dataclass: built once per result on ingest's hot path, where the dataclass's `__init__`
    was 4% of the time."""

    check_id: str
    category: Category
    status: CheckStatus
    summary: str
    values: list[dict[str, Any]]
    thresholds: dict[str, Any]
    remediation: str
    observed_at: datetime


@dataclass(frozen=True)
class OpenedTicket:
    """A ticket the batch opened or reopened: auto-triage runs its diagnostics."""

    ticket_id: int
    check_id: str
    category: Category


@dataclass(frozen=True)
class IngestOutcome:
    acked_through: int
    stored: bool
    """False when the sequence was already stored (a resend): nothing was written."""
    opened: tuple[int, ...] = ()
    resolved: tuple[int, ...] = ()
    opened_tickets: tuple[OpenedTicket, ...] = ()


class UnknownAgentError(LookupError):
    pass


@dataclass(frozen=True)
class Batch:
    """One upstream results message of one agent, as received."""

    agent_id: str
    sequence: int
    results: list[IncomingResult]
    received_at: datetime


@dataclass(slots=True)
class _State:
    """A check_states row, as plain values: loaded with one query, written with one
    executemany, never tracked by the ORM (that was most of ingest's time)."""

    agent_id: str
    check_id: str
    status: int = 0
    summary: str = ""
    observed_at: datetime | None = None
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    open_ticket_id: int | None = None
    last_failure_id: int | None = None
    changes: list[float] = field(default_factory=list)
    last_ticket_id: int | None = None
    stored: bool = True
    """False for a check this machine never reported before: inserted, not updated."""


def ingest_batch(
    session: Session,
    agent_id: str,
    sequence: int,
    results: list[IncomingResult],
    rules: TicketRules,
    now: datetime,
    desk: DeskSettings = DEFAULT_DESK,
) -> IngestOutcome:
    """Store `results` as `sequence` of `agent_id` exactly once and run the rules over them."""
    return ingest_batches(session, [Batch(agent_id, sequence, results, now)], rules, desk)[0]


def ingest_batches(
    session: Session,
    batches: Sequence[Batch],
    rules: TicketRules,
    desk: DeskSettings = DEFAULT_DESK,
) -> list[IngestOutcome]:
    """Store many agents' batches, each exactly once, and run the rules over them, in the
    caller's transaction (the caller commits): one outcome per batch, in order.

    A sequence at or below the agent's last stored one is a resend and writes nothing; each
    agent's stream is ordered, so the high-water mark is enough. The writes are a few
    statements for the whole group, whatever the number of batches: the results' INSERT, the
    check states' INSERT and UPDATE, the agents' UPDATE; only tickets go through the ORM.
    """
    last_sequence = _lock_agents(session, {b.agent_id for b in batches})
    accepted: list[Batch] = []
    outcomes: list[IngestOutcome | None] = []
    seen_at: dict[str, datetime] = {}
    for batch in batches:
        if batch.agent_id not in last_sequence:
            raise UnknownAgentError(batch.agent_id)
        seen_at[batch.agent_id] = max(
            batch.received_at, seen_at.get(batch.agent_id, batch.received_at)
        )
        last = last_sequence[batch.agent_id]
        if batch.sequence <= last:
            outcomes.append(IngestOutcome(acked_through=last, stored=False))
            continue
        last_sequence[batch.agent_id] = batch.sequence
        accepted.append(batch)
        outcomes.append(None)

    ids = _insert_results(session, accepted)
    states = _load_states(session, {b.agent_id for b in accepted})
    open_ids = [s.open_ticket_id for s in states.values() if s.open_ticket_id]
    # One query for the open tickets, held here: the session's identity map holds its objects
    # weakly, so without this each `session.get` below was a query of its own again.
    open_tickets = (
        {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(open_ids)))}
        if open_ids
        else {}
    )
    rule_run = _RuleRun(session, states, open_tickets, rules, desk)
    applied = iter([rule_run.apply(b, b_ids) for b, b_ids in zip(accepted, ids, strict=True)])
    settled = [outcome if outcome is not None else next(applied) for outcome in outcomes]

    _write_states(session, states.values(), rule_run.touched)
    table = cast(Table, Agent.__table__)
    session.execute(
        update(table).where(table.c.id == bindparam("b_id")),
        [
            {"b_id": agent_id, "last_sequence": last_sequence[agent_id], "last_seen_at": seen}
            for agent_id, seen in seen_at.items()
        ],
    )
    return settled


class _RuleRun:
    """The ticket rules over a group's results, on the states loaded for it."""

    def __init__(
        self,
        session: Session,
        states: dict[tuple[str, str], _State],
        open_tickets: dict[int, Ticket],
        rules: TicketRules,
        desk: DeskSettings,
    ) -> None:
        self.session = session
        self.states = states
        self.open_tickets = open_tickets
        self.rules = rules
        self.desk = desk
        self.touched: set[tuple[str, str]] = set()
        # The window covering a machine: looked up once per group, only when a ticket would open.
        self._windows: dict[str, MaintenanceWindow | None] = {}

    def apply(self, batch: Batch, ids: list[int]) -> IngestOutcome:
        session, rules = self.session, self.rules
        now = batch.received_at
        at = now.timestamp()
        opened: list[OpenedTicket] = []
        resolved: list[int] = []
        for result_id, result in zip(ids, batch.results, strict=True):
            key = (batch.agent_id, result.check_id)
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = _State(batch.agent_id, result.check_id, stored=False)
            self.touched.add(key)
            state.status = int(result.status)
            state.summary = result.summary
            state.observed_at = result.observed_at
            if counts_only(
                result.status,
                state.consecutive_failures,
                state.consecutive_passes,
                state.open_ticket_id is not None,
            ):
                state.consecutive_passes += 1
                continue
            ticket = (
                self.open_tickets.get(state.open_ticket_id)
                or session.get(Ticket, state.open_ticket_id)
                if state.open_ticket_id
                else None
            )
            if ticket is not None and not TicketState(ticket.state).is_open:
                # Closed or resolved by a person since: the next failures belong to a new ticket.
                state.open_ticket_id = None
                ticket = None
            before = _rule_state(session, state, ticket, result.status.is_failure)
            after, decision = decide(before, result.status, rules, at)
            state.consecutive_failures = after.consecutive_failures
            state.consecutive_passes = after.consecutive_passes
            state.changes = list(after.changes)
            if result.status.is_failure:
                state.last_failure_id = result_id
            if isinstance(decision, OpenTicket):
                if self._window(batch.agent_id, now) is not None:
                    continue  # the result is kept; the window only keeps tickets from opening
                agent = session.get(Agent, batch.agent_id)
                assert agent is not None, "locked by _lock_agents"
                ticket = _open(
                    session, agent, state, result_id, result, decision, rules, self.desk, now
                )
                opened.append(OpenedTicket(ticket.id, ticket.check_id, Category(ticket.category)))
            elif decision is not None:
                assert ticket is not None, "the engine only records, flags or resolves an open one"
                _apply(session, state, ticket, result_id, result, decision, rules, now)
                if isinstance(decision, ResolveTicket):
                    resolved.append(ticket.id)
        return IngestOutcome(
            batch.sequence, True, tuple(t.ticket_id for t in opened), tuple(resolved), tuple(opened)
        )

    def _window(self, agent_id: str, now: datetime) -> MaintenanceWindow | None:
        if agent_id not in self._windows:
            agent = self.session.get(Agent, agent_id)
            tags = (agent.tags if agent is not None else None) or []
            self._windows[agent_id] = in_maintenance(self.session, agent_id, tags, now)
        return self._windows[agent_id]


def _lock_agents(session: Session, agent_ids: set[str]) -> dict[str, int]:
    """The agents' stored high-water marks, their rows locked for the transaction (PostgreSQL;
    in id order, so two collectors' groups never wait on each other in a cycle)."""
    query = (
        select(Agent.id, Agent.last_sequence)
        .where(Agent.id.in_(sorted(agent_ids)))
        .order_by(Agent.id)
        .with_for_update()
    )
    return {agent_id: sequence for agent_id, sequence in session.execute(query)}


def _insert_results(session: Session, batches: list[Batch]) -> list[list[int]]:
    """All the batches' results in one bulk insert, in order; their ids, batch by batch."""
    # A check's thresholds are one shared dict across its results (collector/convert.py decodes
    # each distinct set once), so each set is encoded once; ids are stable while `batches` lives.
    encoded: dict[int, str] = {}
    for batch in batches:
        for result in batch.results:
            if id(result.thresholds) not in encoded:
                encoded[id(result.thresholds)] = orjson.dumps(result.thresholds).decode()
    rows = [
        (
            batch.agent_id,
            batch.sequence,
            position,
            result.check_id,
            int(result.category),
            int(result.status),
            result.summary,
            orjson.dumps(result.values).decode(),
            encoded[id(result.thresholds)],
            result.remediation,
            result.observed_at,
            batch.received_at,
        )
        for batch in batches
        for position, result in enumerate(batch.results)
    ]
    ids = insert_results(session, rows)
    by_batch, start = [], 0
    for batch in batches:
        by_batch.append(ids[start : start + len(batch.results)])
        start += len(batch.results)
    return by_batch


def _rule_state(session: Session, state: _State, ticket: Ticket | None, failing: bool) -> RuleState:
    """Where the rules stand, from the stored state and the check's tickets. The check's last
    ticket only matters to a failure that may reopen it, so a pass never loads it."""
    last_failed = (
        True if state.consecutive_failures else False if state.consecutive_passes else None
    )
    last_resolved_at = None
    if failing and ticket is None and state.last_ticket_id is not None:
        last = session.get(Ticket, state.last_ticket_id)
        # Only a ticket the machine or a person resolved reopens; a closed one is final.
        if last is not None and last.state == TicketState.RESOLVED and last.resolved_at:
            last_resolved_at = last.resolved_at.timestamp()
    return RuleState(
        consecutive_failures=state.consecutive_failures,
        consecutive_passes=state.consecutive_passes,
        open_severity=Severity(ticket.severity) if ticket else None,
        flapping=ticket.flapping if ticket else False,
        last_failed=last_failed,
        changes=tuple(state.changes or ()),
        last_resolved_at=last_resolved_at,
    )


def _load_states(session: Session, agent_ids: set[str]) -> dict[tuple[str, str], _State]:
    """Every check state of these machines (a few dozen each), by (agent, check)."""
    if not agent_ids:
        return {}
    table = cast(Table, CheckState.__table__)
    query = select(table.c.agent_id, table.c.check_id, *(table.c[c] for c in STATE_COLUMNS))
    rows = session.execute(query.where(table.c.agent_id.in_(sorted(agent_ids))))
    return {(row[0], row[1]): _State(*row) for row in rows}


_state_values = operator.attrgetter(*STATE_COLUMNS)


def _write_states(
    session: Session, states: Iterable[_State], touched: set[tuple[str, str]]
) -> None:
    """The states the group changed: new ones in one INSERT, the others in one UPDATE."""
    new: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    for state in states:
        if (state.agent_id, state.check_id) not in touched:
            continue
        (changed if state.stored else new).append(
            (*_state_values(state), state.agent_id, state.check_id)
        )
        state.stored = True
    insert_states(session, new)
    update_states(session, changed)


def _apply(
    session: Session,
    state: _State,
    ticket: Ticket,
    result_id: int,
    result: IncomingResult,
    decision: RecordFailure | FlappingChanged | ResolveTicket,
    rules: TicketRules,
    now: datetime,
) -> None:
    """Carry out a decision of the engine about an open ticket on the store."""
    if isinstance(decision, RecordFailure):
        ticket.failure_count += 1
        ticket.evidence_result_id = result_id
        ticket.updated_at = now
        if decision.raised_to is not None:
            ticket.severity = int(decision.raised_to)
            raised = f"now {decision.raised_to.label}: {result.summary}"
            record(session, ticket, now, "severity", raised)
        if decision.flapping is not None:
            _flag_flapping(session, ticket, decision.flapping, rules, now)
        return
    if isinstance(decision, FlappingChanged):
        _flag_flapping(session, ticket, decision.flapping, rules, now)
        return

    stable = " and stable again" if ticket.flapping else ""
    ticket.state = int(TicketState.RESOLVED)
    ticket.resolved_at = now
    ticket.resolved_by = SYSTEM_ACTOR
    ticket.flapping = False
    ticket.sla_paused_at = None
    state.open_ticket_id = None
    record(
        session,
        ticket,
        now,
        "resolved",
        f"resolved automatically: passed {decision.passes} times in a row{stable}: "
        f"{result.summary}",
    )


def _open(
    session: Session,
    agent: Agent,
    state: _State,
    result_id: int,
    result: IncomingResult,
    decision: OpenTicket,
    rules: TicketRules,
    desk: DeskSettings,
    now: datetime,
) -> Ticket:
    """A new ticket, or the check's recently resolved one reopened."""
    why = (
        f"flapping: more than {rules.flap_changes} pass/fail flips within "
        f"{rules.flap_window_s / 60:g} minutes"
        if decision.flapping and state.consecutive_failures < rules.fails_before_ticket
        else f"failed {state.consecutive_failures} times in a row "
        f"(threshold {rules.fails_before_ticket})"
    )
    last = session.get(Ticket, state.last_ticket_id) if state.last_ticket_id else None
    if decision.reopen and last is not None and last.state == TicketState.RESOLVED:
        ticket = last
        mark_reopened(ticket)
        ticket.severity = int(decision.severity)
        placement = place_ticket(ticket, agent, now, desk)
        kind = "reopened"
    else:
        ticket, placement = new_ticket(
            agent,
            state.check_id,
            result.category,
            decision.severity,
            f"{state.check_id} failing on {agent.hostname}",
            now,
            desk,
        )
        session.add(ticket)
        kind = "opened"
    ticket.failure_count += state.consecutive_failures or 1
    ticket.evidence_result_id = result_id
    ticket.flapping = decision.flapping
    session.flush()
    state.open_ticket_id = ticket.id
    state.last_ticket_id = ticket.id
    record(session, ticket, now, kind, f"{why}: {result.summary}; {placement}")
    return ticket


def _flag_flapping(
    session: Session, ticket: Ticket, flapping: bool, rules: TicketRules, now: datetime
) -> None:
    ticket.flapping = flapping
    if flapping:
        message = (
            f"flapping: more than {rules.flap_changes} pass/fail flips within "
            f"{rules.flap_window_s / 60:g} minutes; not auto-resolved until stable"
        )
    else:
        message = "stable again: no longer flapping"
    record(session, ticket, now, "flapping", message)
