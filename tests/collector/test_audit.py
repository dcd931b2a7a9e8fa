"""The audit log on a real collector (SQLite and PostgreSQL): actions, failed actions, refused
calls, a streaming call, reads left out, ListAudit and `remdiag audit`, and a failing audit
write that does not fail the call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from collector.cli import main
from collector.server import Collector
from collector.store.models import AuditEntry
from remdiag.v1 import console_pb2, console_pb2_grpc
from tests.collector.conftest import as_, token_of
from tests.collector.test_console_actions import Machines
from tests.support import eventually

Stub = console_pb2_grpc.ConsoleServiceStub


@pytest.fixture
async def bare(collector: Collector) -> AsyncIterator[Stub]:
    """A console stub whose calls carry no token unless they pass one."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{collector.port}") as channel:
        yield Stub(channel)


async def rows(collector: Collector) -> list[tuple[str, str, str, str, str, str]]:
    found = await collector.store.run(
        lambda s: list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    )
    return [(e.actor, e.role, e.action, e.target, e.outcome, e.detail) for e in found]


async def written(collector: Collector, count: int) -> list[tuple[str, str, str, str, str, str]]:
    """The rows once there are `count`: a call the servicer aborted has its status sent before
    the interceptor writes its row."""

    async def enough() -> list[tuple[str, str, str, str, str, str]] | None:
        found = await rows(collector)
        return found if len(found) >= count else None

    return await eventually(enough, f"{count} audit rows", timeout_s=10)


async def test_an_action_and_a_failed_action_are_written(collector: Collector, bare: Stub) -> None:
    machines = Machines(collector)
    agent_id = await machines.enroll(1)
    ticket_id = await machines.fail(agent_id, 0)
    take = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, take=console_pb2.TakeTicket())
    await bare.UpdateTicket(take, metadata=as_("alice"))
    with pytest.raises(grpc.aio.AioRpcError):
        await bare.UpdateTicket(
            console_pb2.UpdateTicketRequest(ticket_id=999, take=console_pb2.TakeTicket()),
            metadata=as_("alice"),
        )
    await written(collector, 2)
    await bare.TagAgent(
        console_pb2.TagAgentRequest(agent_id=agent_id, add=["vip"], remove=["lab"]),
        metadata=as_("admin"),
    )
    # Reads are not written.
    await bare.ListTickets(console_pb2.ListTicketsRequest(), metadata=as_("alice"))
    await bare.GetTicket(console_pb2.GetTicketRequest(ticket_id=ticket_id), metadata=as_("bob"))

    assert await rows(collector) == [
        ("alice", "technician", "UpdateTicket", f"ticket {ticket_id}", "ok", "take"),
        ("alice", "technician", "UpdateTicket", "ticket 999", "NOT_FOUND", "no ticket 999"),
        ("admin", "admin", "TagAgent", f"agent {agent_id}", "ok", "+vip -lab"),
    ]
    entry = await collector.store.run(lambda s: s.scalars(select(AuditEntry)).first())
    assert entry is not None
    assert abs(entry.at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_refused_calls_are_written(collector: Collector, bare: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await bare.ListAgents(console_pb2.ListAgentsRequest())
    with pytest.raises(grpc.aio.AioRpcError):
        await bare.DeleteWindow(
            console_pb2.DeleteWindowRequest(window_id=3),
            metadata=(("authorization", "Bearer rdconsole_wrong"),),
        )
    with pytest.raises(grpc.aio.AioRpcError):
        await bare.DeleteWindow(console_pb2.DeleteWindowRequest(window_id=3), metadata=as_("bob"))
    actor, role, action, target, outcome, detail = (await rows(collector))[-1]
    assert (actor, role, action, target, outcome) == (
        "bob",
        "technician",
        "DeleteWindow",
        "window 3",
        "PERMISSION_DENIED",
    )
    assert "needs the admin role" in detail
    assert [r[:5] for r in await rows(collector)][:2] == [
        ("anonymous", "", "ListAgents", "", "UNAUTHENTICATED"),
        ("anonymous", "", "DeleteWindow", "window 3", "UNAUTHENTICATED"),
    ]


async def test_a_streaming_call_is_written_when_it_ends(collector: Collector, bare: Stub) -> None:
    agent_id = await Machines(collector).enroll(1)
    known = (
        await bare.ListActions(console_pb2.ListActionsRequest(), metadata=as_("alice"))
    ).actions
    action = next(a.name for a in known if not any(arg.required for arg in a.arguments))
    request = console_pb2.RunDiagnosticRequest(agent_id=agent_id, action=action, no_wait=True)
    events = [e async for e in bare.RunDiagnostic(request, metadata=as_("alice"))]
    assert events  # queued: the machine is offline
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in bare.RunDiagnostic(request):  # no token
            pass
    with pytest.raises(grpc.aio.AioRpcError):
        unknown = console_pb2.RunDiagnosticRequest(agent_id="nope", action=action)
        async for _ in bare.RunDiagnostic(unknown, metadata=as_("alice")):
            pass
    found = [r[:5] for r in await written(collector, 3)]
    assert found[:2] == [
        ("alice", "technician", "RunDiagnostic", f"agent {agent_id}", "ok"),
        ("anonymous", "", "RunDiagnostic", f"agent {agent_id}", "UNAUTHENTICATED"),
    ]
    assert found[2][:4] == ("alice", "technician", "RunDiagnostic", "agent nope")
    assert found[2][4] != "ok"
    assert (await rows(collector))[0][5] == action


async def test_list_audit_filters_and_is_for_admins(collector: Collector, bare: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)
    for who, action in (
        ("alice", console_pb2.UpdateTicketRequest(take=console_pb2.TakeTicket())),
        ("bob", console_pb2.UpdateTicketRequest(start=console_pb2.StartTicket())),
        ("bob", console_pb2.UpdateTicketRequest(comment=console_pb2.CommentTicket(text="hm"))),
    ):
        action.ticket_id = ticket_id
        await bare.UpdateTicket(action, metadata=as_(who))

    async def listed(**where: object) -> list[tuple[str, str]]:
        reply = await bare.ListAudit(console_pb2.ListAuditRequest(**where), metadata=as_("admin"))  # type: ignore[arg-type]
        return [(e.actor, e.detail) for e in reply.entries]

    assert await listed() == [("bob", "comment"), ("bob", "start"), ("alice", "take")]
    assert await listed(actor="alice") == [("alice", "take")]
    assert await listed(action="UpdateTicket", limit=1) == [("bob", "comment")]
    assert await listed(action="TagAgent") == []
    future = console_pb2.ListAuditRequest()
    future.since.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    assert not (await bare.ListAudit(future, metadata=as_("admin"))).entries

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bare.ListAudit(console_pb2.ListAuditRequest(), metadata=as_("alice"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # That refusal is in the log too.
    assert (await listed(action="ListAudit")) == [
        ("alice", "ListAudit needs the admin role; the token of alice has the technician role")
    ]


async def test_remdiag_audit(collector: Collector, bare: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)
    take = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, take=console_pb2.TakeTicket())
    await bare.UpdateTicket(take, metadata=as_("carol"))
    with pytest.raises(grpc.aio.AioRpcError):
        await bare.ListAgents(console_pb2.ListAgentsRequest())

    def remdiag(*args: str, who: str = "admin") -> Result:
        argv = [*args, "--collector", f"127.0.0.1:{collector.port}"]
        env = {"COLUMNS": "200", "REMDIAG_TOKEN": token_of(who)}
        return CliRunner().invoke(main, argv, env=env)

    shown = await asyncio.to_thread(remdiag, "audit", "--json", "--since", "1h")
    assert shown.exit_code == 0, shown.output
    entries = json.loads(shown.output)
    assert [(e["actor"], e["action"], e["outcome"]) for e in entries] == [
        ("anonymous", "ListAgents", "UNAUTHENTICATED"),
        ("carol", "UpdateTicket", "ok"),
    ]
    assert entries[1]["target"] == f"ticket {ticket_id}"
    mine = await asyncio.to_thread(remdiag, "audit", "--actor", "carol", "--json")
    assert [e["action"] for e in json.loads(mine.output)] == ["UpdateTicket"]
    table = await asyncio.to_thread(remdiag, "audit", "--action", "UpdateTicket", "--limit", "5")
    assert table.exit_code == 0, table.output
    assert "carol" in table.output and f"ticket {ticket_id}" in table.output
    assert "anonymous" not in table.output
    refused = await asyncio.to_thread(remdiag, "audit", who="carol")
    assert refused.exit_code == 1
    assert "ListAudit needs the admin role" in refused.output
    bad = await asyncio.to_thread(remdiag, "audit", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_failed_audit_write_does_not_fail_the_call(
    collector: Collector, bare: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)
    with collector.store.engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_log"))
    take = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, take=console_pb2.TakeTicket())
    detail = await bare.UpdateTicket(take, metadata=as_("alice"))
    assert detail.ticket.assignee == "alice"
    assert "could not write the audit log entry" in caplog.text
