"""The machines: enrollment, credentials, connection state, heartbeats, inventory and queries."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BindParameter, CursorResult, Table, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from collector import tokens
from collector.store.models import CLOSED_STATES, Agent, AgentInventory, CheckState, Ticket
from collector.tls import IssuedCertificate

MAX_BIGINT = 2**63 - 1


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
    certificate_pem: bytes = b""
    """With TLS: the agent's client certificate (CN = agent id), signed by the collector's CA."""


class EnrollmentRefusedError(Exception):
    """Enrollment refused; raised inside the caller's transaction, so nothing is written."""


class TokenRefusedError(EnrollmentRefusedError):
    """No valid enrollment token (and open enrollment is off): the reason is for the log only."""


class MachineRevokedError(EnrollmentRefusedError):
    """The machine's agent was revoked: enrolling again must not silently undo that."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(agent_id)
        self.agent_id = agent_id


@dataclass(frozen=True)
class AgentAuth:
    """What the store says about an agent whose credential matched."""

    revoked: bool
    certificate_sha256: str | None
    """The certificate issued at its latest enrollment (TLS), which alone may connect."""


@dataclass(frozen=True)
class AgentView:
    agent: Agent
    open_tickets: int


def hash_credential(credential: str) -> str:
    # Credentials are 256-bit random secrets, so a fast hash is as strong as a slow one.
    return hashlib.sha256(credential.encode()).hexdigest()


def enroll(
    session: Session,
    machine: MachineInfo,
    now: datetime,
    *,
    token: str = "",
    open_enrollment: bool = True,
    certify: Callable[[str], IssuedCertificate] | None = None,
) -> Enrollment:
    """Issue a credential (and, with `certify`, a client certificate) to `machine`.

    A valid `token` spends one use; without one, only `open_enrollment` admits the machine.
    A machine enrolling again keeps its agent id and gets a new credential and certificate,
    which replace the old ones: a copied machine id takes nothing over without a valid token
    (open enrollment exists on loopback only). A revoked machine is refused. Every refusal
    raises before anything is written, so the caller's transaction leaves no trace.
    """
    if token:
        if not tokens.spend(session, token, now):
            raise TokenRefusedError(tokens.why_refused(session, token, now))
    elif not open_enrollment:
        raise TokenRefusedError("no token, and open enrollment is off")
    credential = secrets.token_urlsafe(32)
    agent = session.scalars(
        select(Agent).where(Agent.machine_id == machine.machine_id).with_for_update()
    ).first()
    if agent is not None and agent.revoked_at is not None:
        raise MachineRevokedError(agent.id)
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
    certificate = certify(agent.id) if certify is not None else None
    agent.certificate_sha256 = certificate.sha256 if certificate is not None else None
    return Enrollment(agent.id, credential, certificate.pem if certificate is not None else b"")


_AGENTS = cast(Table, Agent.__table__)
_INVENTORIES = cast(Table, AgentInventory.__table__)
# The handshake's statements, built once: after a collector restart the whole fleet runs them
# within a minute, and building a statement and its cache key each time was about a tenth of
# the collector's Python then. (Values come as bound parameters.)
_AUTHENTICATE = select(
    _AGENTS.c.credential_hash, _AGENTS.c.revoked_at, _AGENTS.c.certificate_sha256
).where(_AGENTS.c.id == bindparam("b_id"))
_DROPPED: BindParameter[int] = bindparam("b_dropped")
_SPOOL_DROPPED = case((_AGENTS.c.spool_dropped < _DROPPED, _DROPPED), else_=_AGENTS.c.spool_dropped)
"""The count only grows; a reinstalled agent starting again at 0 lowers nothing."""
_CONFIRMED = (
    update(_AGENTS)
    .where(
        _AGENTS.c.id == bindparam("b_id"),
        _AGENTS.c.last_sequence < bindparam("b_sequence"),
        select(_INVENTORIES.c.agent_id)
        .where(
            _INVENTORIES.c.agent_id == bindparam("b_id"),
            _INVENTORIES.c.digest == bindparam("b_digest"),
        )
        .exists(),
    )
    .values(last_sequence=bindparam("b_sequence"), last_seen_at=bindparam("b_at"))
)
_HEARTBEAT = (
    update(_AGENTS)
    .where(_AGENTS.c.id == bindparam("b_id"))
    .values(
        last_seen_at=bindparam("b_at"),
        running_policy_version=bindparam("b_running"),
        spool_dropped=_SPOOL_DROPPED,
    )
)
_CONNECTED = _HEARTBEAT.values(  # a hello is a heartbeat that also describes the machine
    hostname=bindparam("b_hostname"),
    os=bindparam("b_os"),
    os_version=bindparam("b_os_version"),
    architecture=bindparam("b_architecture"),
    agent_version=bindparam("b_agent_version"),
    connected=True,
    connection_id=bindparam("b_connection"),
).returning(_AGENTS.c.last_sequence, _AGENTS.c.tags, _AGENTS.c.policy_version)
_INVENTORY_RECEIVED = (
    update(_INVENTORIES)
    .where(_INVENTORIES.c.agent_id == bindparam("b_id"))
    .values(received_at=bindparam("b_at"))
)


def authenticate(session: Session, agent_id: str, credential: str) -> AgentAuth | None:
    """The agent's standing if `credential` is its current one, else None."""
    row = session.execute(_AUTHENTICATE, {"b_id": agent_id}).first()
    if row is None or not hmac.compare_digest(row.credential_hash, hash_credential(credential)):
        return None
    return AgentAuth(row.revoked_at is not None, row.certificate_sha256)


def verify_credential(session: Session, agent_id: str, credential: str) -> bool:
    """The credential is the agent's current one and the agent is not revoked."""
    auth = authenticate(session, agent_id, credential)
    return auth is not None and not auth.revoked


def revoke(session: Session, agent_id: str, now: datetime) -> bool | None:
    """Revoke an agent: True, False if it already was, None if there is no such agent.

    Its live stream is closed by the collector holding it (collector/auth.py polls).
    """
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        return None
    if agent.revoked_at is not None:
        return False
    agent.revoked_at = now
    return True


def reinstate(session: Session, agent_id: str) -> bool | None:
    """Undo a revocation: True, False if it was not revoked, None if there is no such agent.

    The old credential and certificate stay dead (they may be what was stolen): the machine
    enrolls again, with a token, to get new ones.
    """
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        return None
    if agent.revoked_at is None:
        return False
    agent.revoked_at = None
    agent.credential_hash = ""  # no credential hashes to "": nothing matches it
    agent.certificate_sha256 = None
    agent.connected = False
    agent.connection_id = None
    return True


def revoked_agent_ids(session: Session) -> set[str]:
    """Every revoked agent (few, and indexed): the collector closes their streams."""
    return set(session.scalars(select(Agent.id).where(Agent.revoked_at.is_not(None))))


def current_credentials(session: Session, agent_ids: set[str]) -> dict[str, str]:
    """The credential hash each of `agent_ids` holds now (a later enrollment replaces it)."""
    rows = session.execute(select(Agent.id, Agent.credential_hash).where(Agent.id.in_(agent_ids)))
    return {agent_id: credential_hash for agent_id, credential_hash in rows}


@dataclass(frozen=True)
class Connection:
    connection_id: str
    """Names this stream, so only its own end marks the agent disconnected."""
    last_sequence: int
    tags: tuple[str, ...] = ()
    """The machine's tags, for its policy."""
    policy_version: int = 0
    """The version of the policy the machine should run, as stored (0: none yet)."""


def connected(
    session: Session,
    agent_id: str,
    machine: MachineInfo,
    now: datetime,
    spool_dropped: int = 0,
    policy_version: int = 0,
) -> Connection:
    """Mark the agent connected on a new stream; return it and the last sequence stored.

    `spool_dropped` is the count of results the agent's spool has dropped (Hello.dropped);
    `policy_version` the policy version it runs (Hello.policy_version, 0: none).
    """
    # One plain UPDATE, not an ORM load and flush: a whole fleet says hello after a restart.
    connection_id = uuid.uuid4().hex
    row = session.execute(
        _CONNECTED,
        {
            "b_id": agent_id,
            "b_hostname": machine.hostname,
            "b_os": machine.os,
            "b_os_version": machine.os_version,
            "b_architecture": machine.architecture,
            "b_agent_version": machine.agent_version,
            "b_running": _bounded(policy_version),
            "b_dropped": _bounded(spool_dropped),
            "b_connection": connection_id,
            "b_at": now,
        },
    ).first()
    if row is None:
        raise LookupError(agent_id)
    return Connection(
        connection_id, row.last_sequence, tuple(row.tags or ()), row.policy_version or 0
    )


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


def heartbeat(
    session: Session, agent_id: str, now: datetime, spool_dropped: int = 0, policy_version: int = 0
) -> None:
    """The agent is alive; its spool has dropped `spool_dropped` results (Heartbeat.dropped)
    and it runs policy version `policy_version` (0: none)."""
    heartbeats(session, [(agent_id, now, spool_dropped, policy_version)])


def heartbeats(session: Session, beats: Sequence[tuple[str, datetime, int, int]]) -> dict[str, int]:
    """Many agents' heartbeats (agent id, time, spool dropped, policy version running) in one
    statement; returns the policy version each of them should run."""
    session.execute(
        _HEARTBEAT,
        [
            {
                "b_id": agent_id,
                "b_at": at,
                "b_dropped": _bounded(spool_dropped),
                "b_running": _bounded(running),
            }
            for agent_id, at, spool_dropped, running in beats
        ],
    )
    ids = sorted({agent_id for agent_id, *_ in beats})
    rows = session.execute(select(Agent.id, Agent.policy_version).where(Agent.id.in_(ids)))
    return {agent_id: version for agent_id, version in rows}


def _bounded(count: int) -> int:
    """An agent's count (uint64 on the wire) as the BIGINT column can hold it."""
    return min(max(count, 0), MAX_BIGINT)


@dataclass(frozen=True)
class InventoryUpdate:
    sections: dict[str, Any]
    full: bool
    """Whole inventory (replaces) or changed sections only (merged)."""
    removed: tuple[str, ...] = ()


def store_inventory(
    session: Session,
    agent_id: str,
    sequence: int,
    read: Callable[[], InventoryUpdate],
    now: datetime,
    digest: str | None = None,
) -> int:
    """Apply an inventory or a diff, once per sequence; return the sequence acked through.

    `read` decodes the message (it may raise InvalidMessageError); `digest` identifies a full
    inventory (convert.inventory_digest). When it equals the one stored, the agent sent what
    the store holds (it does so on every connect), so nothing is decoded or rewritten.
    """
    if digest is not None and _confirmed(session, agent_id, sequence, digest, now):
        return sequence
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise LookupError(agent_id)
    agent.last_seen_at = now
    if sequence <= agent.last_sequence:
        return agent.last_sequence  # a resend
    agent.last_sequence = sequence
    stored = session.get(AgentInventory, agent_id)
    if stored is None:
        stored = AgentInventory(agent_id=agent_id, facts={})
        session.add(stored)
    stored.received_at = now
    if digest is not None and digest == stored.digest:
        return sequence
    update = read()
    merged = {} if update.full else dict(stored.facts)
    merged.update(update.sections)
    for section in update.removed:
        merged.pop(section, None)
    stored.facts = merged  # a new object, so the JSON column sees the change
    stored.digest = digest if update.full else None
    return sequence


def _confirmed(session: Session, agent_id: str, sequence: int, digest: str, now: datetime) -> bool:
    """The common case in two plain UPDATEs (a whole fleet reconnects after a restart): the
    stored inventory is this one and the sequence is new. False: nothing was written.

    The agent's row first, as the ORM path below locks it, so two collectors writing the same
    machine's inventory (an old stream and a new one) take the rows in one order."""
    newer = session.execute(
        _CONFIRMED, {"b_id": agent_id, "b_sequence": sequence, "b_digest": digest, "b_at": now}
    )
    if not cast(CursorResult[Any], newer).rowcount:
        return False
    session.execute(_INVENTORY_RECEIVED, {"b_id": agent_id, "b_at": now})
    return True


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


TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_TAGS = 64


class TagError(ValueError):
    pass


def valid_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise TagError(
            f"tag {tag!r}: use 1 to 64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tag


def tag(
    session: Session, agent_id: str, add: Iterable[str], remove: Iterable[str]
) -> AgentView | None:
    """Add then remove tags; None for an unknown agent, TagError for a bad tag."""
    added, removed = [valid_tag(t) for t in add], {valid_tag(t) for t in remove}
    agent = session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        return None
    tags = [t for t in dict.fromkeys([*(agent.tags or []), *added]) if t not in removed]
    if len(tags) > MAX_TAGS:
        raise TagError(f"a machine has at most {MAX_TAGS} tags")
    agent.tags = sorted(tags)
    session.flush()
    found = get_agent(session, agent_id)
    assert found is not None
    return found[0]


def _describe(agent: Agent, machine: MachineInfo) -> None:
    agent.hostname = machine.hostname
    agent.os = machine.os
    agent.os_version = machine.os_version
    agent.architecture = machine.architecture
    agent.agent_version = machine.agent_version
