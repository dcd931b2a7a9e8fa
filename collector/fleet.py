"""The machines: enrollment, credentials, connection state, heartbeats, inventory and queries."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from collector.store.models import CLOSED_STATES, Agent, CheckState, Ticket


@dataclass(frozen=True)
class MachineInfo:
    hostname: str
    machine_id: str
    os: str = ""
    os_version: str = ""
    architecture: str = ""
    agent_version: str = ""


@dataclass(frozen=True)
class Enrollment:
    agent_id: str
    credential: str


@dataclass(frozen=True)
class AgentView:
    agent: Agent
    open_tickets: int


def hash_credential(credential: str) -> str:
    # Credentials are 256-bit random secrets, so a fast hash is as strong as a slow one.
    return hashlib.sha256(credential.encode()).hexdigest()


def enroll(session: Session, machine: MachineInfo, now: datetime) -> Enrollment:
    """Issue a credential; a machine enrolling again keeps its agent id and gets a new one."""
    credential = secrets.token_urlsafe(32)
    agent = session.scalars(select(Agent).where(Agent.machine_id == machine.machine_id)).first()
    if agent is None:
        agent = Agent(
            id=str(uuid.uuid4()),
            machine_id=machine.machine_id,
            enrolled_at=now,
            connected=False,
            last_sequence=0,
        )
        session.add(agent)
    _describe(agent, machine)
    agent.credential_hash = hash_credential(credential)
    return Enrollment(agent.id, credential)


def verify_credential(session: Session, agent_id: str, credential: str) -> bool:
    stored = session.scalar(select(Agent.credential_hash).where(Agent.id == agent_id))
    return stored is not None and hmac.compare_digest(stored, hash_credential(credential))


@dataclass(frozen=True)
class Connection:
    connection_id: str
    """Names this stream, so only its own end marks the agent disconnected."""
    last_sequence: int


def connected(session: Session, agent_id: str, machine: MachineInfo, now: datetime) -> Connection:
    """Mark the agent connected on a new stream; return it and the last sequence stored."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise LookupError(agent_id)
    _describe(agent, machine)
    agent.connected = True
    agent.connection_id = uuid.uuid4().hex
    agent.last_seen_at = now
    return Connection(agent.connection_id, agent.last_sequence)


def disconnected(session: Session, agent_id: str, connection_id: str, now: datetime) -> None:
    """The stream `connection_id` ended; a newer stream of the same agent stays connected."""
    session.execute(
        update(Agent)
        .where(Agent.id == agent_id, Agent.connection_id == connection_id)
        .values(connected=False, connection_id=None, last_seen_at=now)
    )


def all_disconnected(session: Session) -> None:
    """At start-up: no stream survives a restart, whatever the last process recorded."""
    session.execute(
        update(Agent).where(Agent.connected.is_(True)).values(connected=False, connection_id=None)
    )


def heartbeat(session: Session, agent_id: str, now: datetime) -> None:
    session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=now))


@dataclass(frozen=True)
class InventoryUpdate:
    sections: dict[str, Any]
    full: bool
    """Whole inventory (replaces) or changed sections only (merged)."""
    removed: tuple[str, ...] = ()


def store_inventory(
    session: Session, agent_id: str, sequence: int, update: InventoryUpdate, now: datetime
) -> int:
    """Apply an inventory or a diff, once per sequence; return the sequence acked through."""
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise LookupError(agent_id)
    agent.last_seen_at = now
    if sequence > agent.last_sequence:
        merged = {} if update.full else dict(agent.inventory or {})
        merged.update(update.sections)
        for section in update.removed:
            merged.pop(section, None)
        agent.inventory = merged  # a new object, so the JSON column sees the change
        agent.inventory_at = now
        agent.last_sequence = sequence
    return agent.last_sequence


def list_agents(session: Session) -> list[AgentView]:
    open_counts = dict(
        session.execute(
            select(Ticket.agent_id, func.count())
            .where(Ticket.state.not_in(CLOSED_STATES))
            .group_by(Ticket.agent_id)
        ).all()
    )
    agents = session.scalars(select(Agent).order_by(Agent.hostname, Agent.id))
    return [AgentView(a, open_counts.get(a.id, 0)) for a in agents]


def get_agent(session: Session, agent_id: str) -> tuple[AgentView, list[CheckState]] | None:
    agent = session.get(Agent, agent_id)
    if agent is None:
        return None
    open_tickets = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.agent_id == agent_id,
            Ticket.state.not_in(CLOSED_STATES),
        )
    )
    states = session.scalars(
        select(CheckState).where(CheckState.agent_id == agent_id).order_by(CheckState.check_id)
    )
    return AgentView(agent, open_tickets or 0), list(states)


def _describe(agent: Agent, machine: MachineInfo) -> None:
    agent.hostname = machine.hostname
    agent.os = machine.os
    agent.os_version = machine.os_version
    agent.architecture = machine.architecture
    agent.agent_version = machine.agent_version
