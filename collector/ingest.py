"""Stores a batch of check results and applies the ticket rules to it, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from collector.desk import mark_reopened, new_ticket, place_ticket
from collector.engine import (
    Decision,
    FlappingChanged,
    OpenTicket,
    RecordFailure,
    ResolveTicket,
    RuleState,
    TicketRules,
    decide,
)
from collector.store.models import Agent, CheckResult, CheckState, Ticket
from collector.timeline import SYSTEM_ACTOR, record
from collector.triage import DeskSettings
from collector.windows import in_maintenance
from remdiag.vocabulary import Category, CheckStatus, Severity, TicketState

DEFAULT_DESK = DeskSettings()


@dataclass(frozen=True)
class IncomingResult:
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


def ingest_batch(
    session: Session,
    agent_id: str,
    sequence: int,
    results: list[IncomingResult],
    rules: TicketRules,
    now: datetime,
    desk: DeskSettings = DEFAULT_DESK,
) -> IngestOutcome:
    """Store `results` as `sequence` of `agent_id` exactly once and run the rules over them.

    The caller commits. A sequence at or below the agent's last stored one is a resend and
    writes nothing; the agent's stream is ordered, so the high-water mark is enough.
    """
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise UnknownAgentError(agent_id)
    agent.last_seen_at = now
    if sequence <= agent.last_sequence:
        return IngestOutcome(acked_through=agent.last_sequence, stored=False)

    rows = _insert_results(session, agent_id, sequence, results, now)

    states = _load_states(session, agent_id, {r.check_id for r in results})
    open_ids = [s.open_ticket_id for s in states.values() if s.open_ticket_id]
    if open_ids:
        # One query into the identity map: the per-result `session.get`s below then neither
        # query nor autoflush the states changed so far (that was a flush per open ticket).
        session.scalars(select(Ticket).where(Ticket.id.in_(open_ids))).all()
    at = now.timestamp()
    # The window covering the machine: looked up once per batch, only when a ticket would open.
    window_checked, window = False, None
    opened: list[OpenedTicket] = []
    resolved: list[int] = []
    for row, result in zip(rows, results, strict=True):
        state = states.get(result.check_id)
        if state is None:
            state = CheckState(
                agent_id=agent_id,
                check_id=result.check_id,
                consecutive_failures=0,
                consecutive_passes=0,
                changes=[],
            )
            session.add(state)
            states[result.check_id] = state
        ticket = session.get(Ticket, state.open_ticket_id) if state.open_ticket_id else None
        if ticket is not None and not TicketState(ticket.state).is_open:
            # Closed or resolved by a person since: the next failures belong to a new ticket.
            state.open_ticket_id = None
            ticket = None
        before = _rule_state(session, state, ticket, result.status.is_failure)
        after, decision = decide(before, result.status, rules, at)
        state.status = int(result.status)
        state.summary = result.summary
        state.observed_at = result.observed_at
        state.consecutive_failures = after.consecutive_failures
        state.consecutive_passes = after.consecutive_passes
        state.changes = list(after.changes)
        if result.status.is_failure:
            state.last_failure_id = row.id
        if isinstance(decision, OpenTicket):
            if not window_checked:
                window_checked = True
                window = in_maintenance(session, agent.id, agent.tags or [], now)
            if window is not None:
                continue  # the result is kept; the window only keeps tickets from opening
        if decision is not None:
            ticket = _apply(session, agent, state, ticket, row, decision, rules, desk, now)
            if isinstance(decision, OpenTicket):
                opened.append(OpenedTicket(ticket.id, ticket.check_id, Category(ticket.category)))
            elif isinstance(decision, ResolveTicket):
                resolved.append(ticket.id)

    agent.last_sequence = sequence
    return IngestOutcome(
        sequence, True, tuple(t.ticket_id for t in opened), tuple(resolved), tuple(opened)
    )


@dataclass(frozen=True)
class StoredResult:
    """What the rules need of a stored result row."""

    id: int
    category: int
    summary: str


def _insert_results(
    session: Session,
    agent_id: str,
    sequence: int,
    results: list[IncomingResult],
    now: datetime,
) -> list[StoredResult]:
    """One multi-row INSERT ... RETURNING id, in the batch's order.

    Core, not ORM objects: the rows are never changed afterwards in this transaction, and
    building, tracking and flushing 100 ORM instances a batch was most of ingest's time.
    """
    if not results:
        return []
    params = [
        {
            "agent_id": agent_id,
            "sequence": sequence,
            "position": position,
            "check_id": result.check_id,
            "category": int(result.category),
            "status": int(result.status),
            "summary": result.summary,
            "values": result.values,
            "thresholds": result.thresholds,
            "remediation": result.remediation,
            "observed_at": result.observed_at,
            "received_at": now,
        }
        for position, result in enumerate(results)
    ]
    table = cast(Table, CheckResult.__table__)
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = session.execute(statement, params).scalars().all()
    return [
        StoredResult(id, int(result.category), result.summary)
        for id, result in zip(ids, results, strict=True)
    ]


def _rule_state(
    session: Session, state: CheckState, ticket: Ticket | None, failing: bool
) -> RuleState:
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


def _load_states(session: Session, agent_id: str, check_ids: set[str]) -> dict[str, CheckState]:
    query = select(CheckState).where(
        CheckState.agent_id == agent_id, CheckState.check_id.in_(check_ids)
    )
    return {s.check_id: s for s in session.scalars(query)}


def _apply(
    session: Session,
    agent: Agent,
    state: CheckState,
    ticket: Ticket | None,
    row: StoredResult,
    decision: Decision,
    rules: TicketRules,
    desk: DeskSettings,
    now: datetime,
) -> Ticket:
    """Carry out a decision of the engine on the store."""
    if isinstance(decision, OpenTicket):
        return _open(session, agent, state, row, decision, rules, desk, now)

    assert ticket is not None, "the engine only records, flags or resolves an open ticket"
    if isinstance(decision, RecordFailure):
        ticket.failure_count += 1
        ticket.evidence_result_id = row.id
        ticket.updated_at = now
        if decision.raised_to is not None:
            ticket.severity = int(decision.raised_to)
            record(
                session, ticket, now, "severity", f"now {decision.raised_to.label}: {row.summary}"
            )
        if decision.flapping is not None:
            _flag_flapping(session, ticket, decision.flapping, rules, now)
        return ticket
    if isinstance(decision, FlappingChanged):
        _flag_flapping(session, ticket, decision.flapping, rules, now)
        return ticket

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
        f"resolved automatically: passed {decision.passes} times in a row{stable}: {row.summary}",
    )
    return ticket


def _open(
    session: Session,
    agent: Agent,
    state: CheckState,
    row: StoredResult,
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
            Category(row.category),
            decision.severity,
            f"{state.check_id} failing on {agent.hostname}",
            now,
            desk,
        )
        session.add(ticket)
        kind = "opened"
    ticket.failure_count += state.consecutive_failures or 1
    ticket.evidence_result_id = row.id
    ticket.flapping = decision.flapping
    session.flush()
    state.open_ticket_id = ticket.id
    state.last_ticket_id = ticket.id
    record(session, ticket, now, kind, f"{why}: {row.summary}; {placement}")
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
