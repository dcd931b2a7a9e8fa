"""Offline machines: no word for `offline_after` opens an `offline` ticket; word again resolves it.

Run by the desk sweep (collector/jobs.py). A machine inside a maintenance window gets no new
offline ticket; a revoked machine gets none at all. An offline ticket resolved within the
reopen window is reopened rather than a new one opened, as for checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import windows
from collector.desk import mark_reopened, new_ticket, place_ticket
from collector.store.models import CLOSED_STATES, Agent, Ticket
from collector.timeline import SYSTEM_ACTOR, record
from collector.triage import DeskSettings, offline_after
from remdiag.vocabulary import Category, Severity, TicketState

OFFLINE_CHECK = "offline"
LOAD_CHUNK = 500
"""Silent machines loaded per query (a weekend can silence thousands at once)."""


@dataclass(frozen=True)
class OfflineOutcome:
    opened: tuple[int, ...] = ()
    resolved: tuple[int, ...] = ()


def is_silent(last_word: datetime, tags: list[str], now: datetime, desk: DeskSettings) -> bool:
    """Pure: has the machine been quiet longer than its tags allow?"""
    return now - last_word > timedelta(seconds=offline_after(tags, desk))


def sweep_offline(
    session: Session, now: datetime, desk: DeskSettings, reopen_window: timedelta
) -> OfflineOutcome:
    """Open offline tickets for silent machines, resolve those of machines heard from since."""
    open_offline = {
        t.agent_id: t
        for t in session.scalars(
            select(Ticket)
            .where(Ticket.check_id == OFFLINE_CHECK, Ticket.state.not_in(CLOSED_STATES))
            .with_for_update(skip_locked=True)
        )
    }
    # Plain rows, not Agent objects: this reads every machine every sweep.
    agents = session.execute(
        select(Agent.id, Agent.last_seen_at, Agent.enrolled_at, Agent.tags).where(
            Agent.revoked_at.is_(None)
        )
    )
    silent: list[str] = []
    resolved: list[int] = []
    for agent_id, last_seen_at, enrolled_at, tags in agents:
        last_word = last_seen_at or enrolled_at
        quiet = is_silent(last_word, tags or [], now, desk)
        ticket = open_offline.get(agent_id)
        if ticket is not None and not quiet:
            _resolve(session, ticket, last_word, now)
            resolved.append(ticket.id)
        elif ticket is None and quiet:
            silent.append(agent_id)
    if not silent:
        return OfflineOutcome((), tuple(resolved))
    covered = windows.agents_in_maintenance(session, now)
    opening = [agent_id for agent_id in silent if agent_id not in covered]
    agents_opening = [
        agent
        for start in range(0, len(opening), LOAD_CHUNK)
        for agent in session.scalars(
            select(Agent).where(Agent.id.in_(opening[start : start + LOAD_CHUNK]))
        ).all()
    ]
    opened = [_open(session, agent, now, desk, reopen_window).id for agent in agents_opening]
    return OfflineOutcome(tuple(opened), tuple(resolved))


def _resolve(session: Session, ticket: Ticket, last_word: datetime, now: datetime) -> None:
    ticket.state = int(TicketState.RESOLVED)
    ticket.resolved_at = now
    ticket.resolved_by = SYSTEM_ACTOR
    ticket.sla_paused_at = None
    record(
        session,
        ticket,
        now,
        "resolved",
        f"back online: heard from at {last_word:%Y-%m-%d %H:%M} UTC",
    )


def _open(
    session: Session, agent: Agent, now: datetime, desk: DeskSettings, reopen_window: timedelta
) -> Ticket:
    last_word = agent.last_seen_at or agent.enrolled_at
    why = (
        f"no word from the machine since {last_word:%Y-%m-%d %H:%M} UTC "
        f"(more than {offline_after(agent.tags or [], desk) / 60:g} minutes)"
    )
    last = session.scalars(
        select(Ticket)
        .where(Ticket.agent_id == agent.id, Ticket.check_id == OFFLINE_CHECK)
        .order_by(Ticket.id.desc())
        .limit(1)
    ).first()
    if (
        last is not None
        and last.state == TicketState.RESOLVED
        and last.resolved_at is not None
        and now - last.resolved_at <= reopen_window
    ):
        ticket, kind = last, "reopened"
        mark_reopened(ticket)
        placement = place_ticket(ticket, agent, now, desk)
    else:
        ticket, placement = new_ticket(
            agent,
            OFFLINE_CHECK,
            Category.NETWORK,
            Severity.WARNING,
            f"{agent.hostname} is offline",
            now,
            desk,
        )
        kind = "opened"
        session.add(ticket)
    ticket.failure_count += 1
    session.flush()
    record(session, ticket, now, kind, f"{why}; {placement}")
    return ticket
