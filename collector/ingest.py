"""Stores a batch of check results and applies the ticket rules to it, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.engine import (
    Decision,
    OpenTicket,
    RecordFailure,
    ResolveTicket,
    RuleState,
    TicketRules,
    decide,
)
from collector.store.models import Agent, CheckResult, CheckState, Ticket
from collector.timeline import record
from collector.triage import DeskSettings, place
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
class IngestOutcome:
    acked_through: int
    stored: bool
    """False when the sequence was already stored (a resend): nothing was written."""
    opened: tuple[int, ...] = ()
    resolved: tuple[int, ...] = ()


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

    rows = [_result_row(agent_id, sequence, position, r, now) for position, r in enumerate(results)]
    session.add_all(rows)
    session.flush()

    states = _load_states(session, agent_id, {r.check_id for r in results})
    opened: list[int] = []
    resolved: list[int] = []
    for row, result in zip(rows, results, strict=True):
        state = states.get(result.check_id)
        if state is None:
            state = CheckState(
                agent_id=agent_id,
                check_id=result.check_id,
                consecutive_failures=0,
                consecutive_passes=0,
            )
            session.add(state)
            states[result.check_id] = state
        ticket = session.get(Ticket, state.open_ticket_id) if state.open_ticket_id else None
        if ticket is not None and not TicketState(ticket.state).is_open:
            # Closed by a person since: the next failures belong to a new ticket.
            state.open_ticket_id = None
            ticket = None
        before = RuleState(
            state.consecutive_failures,
            state.consecutive_passes,
            Severity(ticket.severity) if ticket else None,
        )
        after, decision = decide(before, result.status, rules)
        state.status = int(result.status)
        state.summary = result.summary
        state.observed_at = result.observed_at
        state.consecutive_failures = after.consecutive_failures
        state.consecutive_passes = after.consecutive_passes
        if result.status.is_failure:
            state.last_failure_id = row.id
        if decision is not None:
            ticket = _apply(session, agent, state, ticket, row, decision, rules, desk, now)
            if isinstance(decision, OpenTicket):
                opened.append(ticket.id)
            elif isinstance(decision, ResolveTicket):
                resolved.append(ticket.id)

    agent.last_sequence = sequence
    return IngestOutcome(sequence, True, tuple(opened), tuple(resolved))


def _result_row(
    agent_id: str, sequence: int, position: int, result: IncomingResult, now: datetime
) -> CheckResult:
    return CheckResult(
        agent_id=agent_id,
        sequence=sequence,
        position=position,
        check_id=result.check_id,
        category=int(result.category),
        status=int(result.status),
        summary=result.summary,
        values=result.values,
        thresholds=result.thresholds,
        remediation=result.remediation,
        observed_at=result.observed_at,
        received_at=now,
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
    row: CheckResult,
    decision: Decision,
    rules: TicketRules,
    desk: DeskSettings,
    now: datetime,
) -> Ticket:
    """Carry out a decision of the engine on the store."""
    if isinstance(decision, OpenTicket):
        placed = place(state.check_id, Category(row.category), decision.severity, now, desk)
        ticket = Ticket(
            agent_id=agent.id,
            check_id=state.check_id,
            category=row.category,
            severity=int(decision.severity),
            state=int(TicketState.NEW),
            title=f"{state.check_id} failing on {agent.hostname}",
            opened_at=now,
            updated_at=now,
            failure_count=state.consecutive_failures,
            evidence_result_id=row.id,
            priority=int(placed.priority),
            tier=int(placed.tier),
            respond_by=placed.respond_by,
            resolve_by=placed.resolve_by,
        )
        session.add(ticket)
        session.flush()
        state.open_ticket_id = ticket.id
        record(
            session,
            ticket,
            now,
            "opened",
            f"failed {state.consecutive_failures} times in a row "
            f"(threshold {rules.fails_before_ticket}): {row.summary}; "
            f"{placed.priority.name}, {placed.tier.name}",
        )
        return ticket

    assert ticket is not None, "the engine only records or resolves on an open ticket"
    ticket.updated_at = now
    if isinstance(decision, RecordFailure):
        ticket.failure_count += 1
        ticket.evidence_result_id = row.id
        if decision.raised_to is not None:
            ticket.severity = int(decision.raised_to)
            record(
                session, ticket, now, "severity", f"now {decision.raised_to.label}: {row.summary}"
            )
        return ticket

    ticket.state = int(TicketState.RESOLVED)
    ticket.resolved_at = now
    state.open_ticket_id = None
    record(
        session,
        ticket,
        now,
        "resolved",
        f"resolved automatically: passed {decision.passes} times in a row: {row.summary}",
    )
    return ticket
