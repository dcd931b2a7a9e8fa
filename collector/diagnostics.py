"""Diagnostic requests to machines: queued, sent, running, then done, failed, refused or expired.

Store functions, one transaction each through Store.run. Who holds which agent's stream is
collector/dispatch.py's business; what an action is and which arguments it takes is the agent's
own registry (agent/diagnostics), which the collector reads to refuse bad requests early; the
agent validates them again itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from collector import bus
from collector.store.models import Agent, Diagnostic, Ticket
from collector.timeline import record
from remdiag.vocabulary import DiagnosticState

DEFAULT_PAGE = 200
MAX_PAGE = 1000
WAITING = (DiagnosticState.QUEUED, DiagnosticState.SENT, DiagnosticState.RUNNING)
IN_FLIGHT = (int(DiagnosticState.SENT), int(DiagnosticState.RUNNING))


class DiagnosticError(ValueError):
    """A request the collector refuses; the message says why."""


class NoSuchMachineError(LookupError):
    pass


@dataclass(frozen=True)
class DiagnosticView:
    """A diagnostic with its machine's host name, detached from the session."""

    row: Diagnostic
    hostname: str


@dataclass(frozen=True)
class Update:
    """What an agent reported about one of its requests."""

    request_id: str
    state: DiagnosticState
    progress: str
    output: dict[str, Any] | None
    error: str
    truncated: bool


def find_agent(session: Session, machine: str) -> Agent:
    """An agent by id, or by host name when exactly one machine has it."""
    agent = session.get(Agent, machine)
    if agent is not None:
        return agent
    named = list(session.scalars(select(Agent).where(Agent.hostname == machine).limit(2)))
    if len(named) == 1:
        return named[0]
    if named:
        raise DiagnosticError(f"several machines are called {machine!r}: give the agent id")
    raise NoSuchMachineError(f"no machine {machine!r} (an agent id or host name)")


def request(
    session: Session,
    machine: str,
    action: str,
    args: dict[str, Any],
    requested_by: str,
    now: datetime,
    expires_in: timedelta,
    ticket_id: int = 0,
    *,
    task_run_id: int | None = None,
) -> DiagnosticView:
    """Queue a validated request for a machine; the caller sends it if the machine is here.
    `task_run_id`: the maintenance task run it is a step of (collector/tasks.py)."""
    agent = find_agent(session, machine)
    if agent.revoked_at is not None:
        raise DiagnosticError(f"machine {agent.hostname} ({agent.id}) is revoked")
    if ticket_id:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NoSuchMachineError(f"no ticket {ticket_id}")
        if ticket.agent_id != agent.id:
            raise DiagnosticError(f"ticket {ticket_id} is about another machine")
    row = Diagnostic(
        id=str(uuid.uuid4()),
        agent_id=agent.id,
        action=action,
        args=args,
        state=int(DiagnosticState.QUEUED),
        requested_by=requested_by,
        ticket_id=ticket_id or None,
        requested_at=now,
        expires_at=now + expires_in,
        progress="",
        error="",
        truncated=False,
        task_run_id=task_run_id,
    )
    session.add(row)
    session.flush()
    bus.announce(session, bus.QUEUED, agent.id)  # the collector holding its stream sends it
    return DiagnosticView(row, agent.hostname)


def claim(session: Session, request_id: str, now: datetime) -> DiagnosticView | None:
    """QUEUED -> SENT, once: whoever gets the row back sends it (no double sends)."""
    claimed = session.execute(
        update(Diagnostic)
        .where(
            Diagnostic.id == request_id,
            Diagnostic.state == int(DiagnosticState.QUEUED),
            Diagnostic.expires_at > now,
        )
        .values(state=int(DiagnosticState.SENT), sent_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    bus.announce(session, bus.CHANGED, request_id)
    return get(session, request_id)


_PENDING = (
    select(Diagnostic.id)
    .where(
        Diagnostic.agent_id == bindparam("b_agent"),
        Diagnostic.state == int(DiagnosticState.QUEUED),
        Diagnostic.expires_at > bindparam("b_now"),
    )
    .order_by(Diagnostic.requested_at)
)
"""Built once: every Welcome runs it, and a whole fleet says hello after a restart."""


def claim_pending(session: Session, agent_id: str, now: datetime) -> list[DiagnosticView]:
    """Everything queued for a machine that just connected, oldest first, claimed for sending."""
    ids = session.scalars(_PENDING, {"b_agent": agent_id, "b_now": now}).all()
    return [view for i in ids if (view := claim(session, i, now)) is not None]


def requeue(session: Session, agent_id: str, now: datetime) -> list[str]:
    """A machine went away with requests in flight: queue them again (the agent answers a
    request it already ran from its record, so a resend never runs anything twice)."""
    ids = list(
        session.scalars(
            select(Diagnostic.id).where(
                Diagnostic.agent_id == agent_id,
                Diagnostic.state.in_(IN_FLIGHT),
                Diagnostic.expires_at > now,
            )
        )
    )
    if ids:
        session.execute(
            update(Diagnostic)
            .where(Diagnostic.id.in_(ids))
            .values(state=int(DiagnosticState.QUEUED), progress="machine went away: queued again")
        )
        # It may already be back, on another collector.
        bus.announce(session, bus.QUEUED, agent_id)
    return ids


def expire(session: Session, now: datetime) -> list[DiagnosticView]:
    """Requests still waiting for their machine when they expire will never run."""
    ids = list(
        session.scalars(
            select(Diagnostic.id).where(
                Diagnostic.state == int(DiagnosticState.QUEUED), Diagnostic.expires_at <= now
            )
        )
    )
    if ids:
        session.execute(
            update(Diagnostic)
            .where(Diagnostic.id.in_(ids), Diagnostic.state == int(DiagnosticState.QUEUED))
            .values(
                state=int(DiagnosticState.EXPIRED),
                finished_at=now,
                error="expired before the machine came online",
            )
        )
        for i in ids:
            bus.announce(session, bus.CHANGED, i)
    return _views(session, ids)


def apply_update(
    session: Session,
    agent_id: str,
    reported: Update,
    now: datetime,
    is_remediation: Callable[[str], bool],
) -> DiagnosticView | None:
    """Record what the agent said about its own request; None if it is not one of its own or
    it has already ended (late or repeated answers change nothing)."""
    row = session.get(Diagnostic, reported.request_id, with_for_update=True)
    if row is None or row.agent_id != agent_id or DiagnosticState(row.state).is_final:
        return None
    before = DiagnosticState(row.state)
    row.state = int(reported.state)
    if reported.progress:
        row.progress = reported.progress
    if reported.state.is_final:
        row.finished_at = now
        row.output = reported.output
        row.error = reported.error
        row.truncated = reported.truncated
    if row.ticket_id is not None and reported.state != before and is_remediation(row.action):
        _remediation_event(session, row, now)
    session.flush()
    bus.announce(session, bus.CHANGED, row.id)
    return get(session, row.id)


def _remediation_event(session: Session, row: Diagnostic, now: datetime) -> None:
    ticket = session.get(Ticket, row.ticket_id)
    if ticket is None:
        return
    state = DiagnosticState(row.state)
    words = {
        DiagnosticState.RUNNING: "in progress",
        DiagnosticState.DONE: "succeeded",
        DiagnosticState.FAILED: f"failed: {row.error}",
        DiagnosticState.REFUSED: f"refused by the machine: {row.error}",
    }
    if state in words:
        record(
            session,
            ticket,
            now,
            "remediation",
            f"{row.action} (asked by {row.requested_by}) {words[state]}",
        )


def get(session: Session, request_id: str) -> DiagnosticView | None:
    found = _views(session, [request_id])
    return found[0] if found else None


def _views(session: Session, request_ids: Sequence[str]) -> list[DiagnosticView]:
    """The requests with their machines' host names, in one query."""
    if not request_ids:
        return []
    found = session.execute(
        select(Diagnostic, Agent.hostname)
        .join(Agent, Agent.id == Diagnostic.agent_id)
        .where(Diagnostic.id.in_(request_ids))
        .order_by(Diagnostic.requested_at)
    )
    return [DiagnosticView(row, hostname) for row, hostname in found]


def list_diagnostics(
    session: Session,
    *,
    machine: str = "",
    states: Sequence[DiagnosticState] = (),
    ticket_id: int = 0,
    limit: int = 0,
) -> list[DiagnosticView]:
    """Newest first; `machine` is an agent id or a unique host name."""
    query = select(Diagnostic, Agent.hostname).join(Agent, Agent.id == Diagnostic.agent_id)
    if machine:
        query = query.where(Diagnostic.agent_id == find_agent(session, machine).id)
    if states:
        query = query.where(Diagnostic.state.in_(sorted(int(s) for s in states)))
    if ticket_id:
        query = query.where(Diagnostic.ticket_id == ticket_id)
    query = query.order_by(Diagnostic.requested_at.desc(), Diagnostic.id)
    query = query.limit(min(limit or DEFAULT_PAGE, MAX_PAGE))
    return [DiagnosticView(row, hostname) for row, hostname in session.execute(query)]
