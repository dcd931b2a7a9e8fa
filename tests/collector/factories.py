"""Factories for collector tests: machines, enrolled agents, results (domain, proto), counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector import fleet
from collector.ingest import IncomingResult
from collector.store.models import Agent, CheckResult, CheckState, Ticket, TicketEvent
from remdiag.v1 import agent_pb2, common_pb2
from remdiag.vocabulary import Category, CheckStatus

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DISK = "disk.free_space"
SUMMARIES = {
    CheckStatus.OK: "/ 40.0% used, 60.0 GiB free",
    CheckStatus.WARNING: "/ 91.0% used, 9.0 GiB free",
    CheckStatus.CRITICAL: "/ 99.0% used, 0.1 GiB free",
    CheckStatus.UNKNOWN: "could not read / : permission denied",
}
TABLES: tuple[type[Any], ...] = (Agent, CheckResult, CheckState, Ticket, TicketEvent)


def at(minutes: int) -> datetime:
    """A fixed instant `minutes` after NOW: tests never read the clock."""
    return NOW + timedelta(minutes=minutes)


def machine(n: int = 1) -> fleet.MachineInfo:
    return fleet.MachineInfo(
        hostname=f"pc-{n}",
        machine_id=f"machine-{n}",
        os="Linux",
        os_version="6.8",
        architecture="x86_64",
        agent_version="0.1.0",
    )


def enrolled(session: Session, n: int = 1, now: datetime = NOW) -> fleet.Enrollment:
    return fleet.enroll(session, machine(n), now)


def result(
    status: CheckStatus = CheckStatus.CRITICAL,
    check_id: str = DISK,
    observed_at: datetime = NOW,
) -> IncomingResult:
    return IncomingResult(
        check_id=check_id,
        category=Category.HARDWARE,
        status=status,
        summary=SUMMARIES[status],
        values=[{"name": "used_percent", "value": 99.0, "unit": "percent"}],
        thresholds={"max_used_percent": 90},
        remediation="Empty the recycle bin and remove old downloads.",
        observed_at=observed_at,
    )


def counts(session: Session) -> dict[str, int]:
    """Rows per table, to show that a call wrote nothing."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in TABLES
    }


def identity(n: int = 1) -> agent_pb2.MachineIdentity:
    m = machine(n)
    return agent_pb2.MachineIdentity(
        hostname=m.hostname,
        machine_id=m.machine_id,
        os=m.os,
        os_version=m.os_version,
        architecture=m.architecture,
    )


def hello(agent_id: str = "", n: int = 1) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(agent_id=agent_id, agent_version="0.1.0", machine=identity(n))
    )


def pb_result(
    status: int = common_pb2.CHECK_STATUS_CRITICAL, check_id: str = DISK
) -> common_pb2.CheckResult:
    """A result as an agent sends it; `status` is an int so tests can send one out of range."""
    message = common_pb2.CheckResult(
        check_id=check_id,
        category=common_pb2.CATEGORY_HARDWARE,
        status=status,  # type: ignore[arg-type]
        summary="/ 99.0% used, 0.1 GiB free",
        values=[common_pb2.MeasuredValue(name="used_percent", number=99.0, unit="percent")],
        remediation="Empty the recycle bin and remove old downloads.",
    )
    message.thresholds.update({"max_used_percent": 90})
    message.observed_at.FromDatetime(NOW)
    return message


def batch(sequence: int, *results: common_pb2.CheckResult) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        sequence=sequence, results=agent_pb2.ResultBatch(results=list(results))
    )


def heartbeat() -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(queued=0))
