"""ConsoleService's technician calls on a real grpc.aio server, SQLite and PostgreSQL:
UpdateTicket, TagAgent, and ListTickets' filters and sort orders.

Results are ingested at fixed instants far in the future: the collector's own sweep runs on the
real clock, so it never finds a deadline missed or a machine silent among these tickets, and the
tickets stay exactly as each test makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from collector import desk
from collector.engine import TicketRules
from collector.ingest import IncomingResult, ingest_batch
from collector.server import Collector
from remdiag.v1 import console_pb2, console_pb2_grpc
from remdiag.vocabulary import Category, CheckStatus, Priority, TicketState, Tier
from tests.collector.conftest import as_
from tests.collector.factories import DISK, enrolled, result

RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2)
BASE = datetime(2100, 1, 4, 9, 0, tzinfo=UTC)
DNS = "network.dns"
Stub = console_pb2_grpc.ConsoleServiceStub


def later(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


@pytest.fixture
def console(channel: grpc.aio.Channel) -> Stub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


class Machines:
    """Enrolled agents sending numbered batches through ingest."""

    def __init__(self, collector: Collector) -> None:
        self.store = collector.store
        self.sequences: dict[str, int] = {}

    async def enroll(self, n: int) -> str:
        agent_id = await self.store.run(lambda s: enrolled(s, n, later(0)).agent_id)
        self.sequences[agent_id] = 0
        return agent_id

    async def fail(
        self,
        agent_id: str,
        minute: int,
        status: CheckStatus = CheckStatus.CRITICAL,
        check_id: str = DISK,
        category: Category = Category.HARDWARE,
    ) -> int:
        """Three failing results from `minute` on: the ticket they open (a check that kept
        failing opens it at the first)."""
        opened: tuple[int, ...] = ()
        for m in range(minute, minute + 3):
            self.sequences[agent_id] += 1
            sequence, now = self.sequences[agent_id], later(m)
            incoming = result(status, check_id, now)._replace(category=category)
            opened += await self.send(agent_id, sequence, incoming)
        assert len(opened) == 1
        return opened[0]

    async def send(self, agent_id: str, sequence: int, incoming: IncomingResult) -> tuple[int, ...]:
        now = incoming.observed_at
        outcome = await self.store.run(
            lambda s: ingest_batch(s, agent_id, sequence, [incoming], RULES, now)
        )
        return outcome.opened


async def update(
    console: Stub, ticket_id: int, actor: str, **action: object
) -> console_pb2.TicketDetail:
    """UpdateTicket with the console token of `actor` (one of PEOPLE): the actor it records."""
    request = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, **action)  # type: ignore[arg-type]
    reply: console_pb2.TicketDetail = await console.UpdateTicket(request, metadata=as_(actor))
    return reply


async def refused(
    console: Stub, ticket_id: int, actor: str = "alice", **action: Any
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(console, ticket_id, actor, **action)
    return caught.value


# --- UpdateTicket -------------------------------------------------------------------------------


async def test_each_action_once(collector: Collector, console: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)

    taken = await update(console, ticket_id, "alice", take=console_pb2.TakeTicket())
    t = taken.ticket
    assert (t.id, t.state, t.assignee, t.tier) == (
        ticket_id,
        TicketState.ACKNOWLEDGED,
        "alice",
        Tier.L1,
    )
    assert t.HasField("acknowledged_at")
    first_response = t.acknowledged_at

    t = (
        await update(console, ticket_id, "alice", assign=console_pb2.AssignTicket(assignee="bob"))
    ).ticket
    assert (t.state, t.assignee) == (TicketState.ACKNOWLEDGED, "bob")
    assert t.acknowledged_at == first_response

    t = (await update(console, ticket_id, "bob", start=console_pb2.StartTicket())).ticket
    assert (t.state, t.assignee) == (TicketState.IN_PROGRESS, "bob")

    commented = await update(
        console, ticket_id, "carol", comment=console_pb2.CommentTicket(text="user called again")
    )
    assert commented.ticket.state == TicketState.IN_PROGRESS
    assert commented.events[-1].message == "user called again"

    t = (
        await update(
            console, ticket_id, "bob", escalate=console_pb2.EscalateTicket(note="hardware fault")
        )
    ).ticket
    assert (t.tier, t.assignee, t.state) == (Tier.L2, "", TicketState.ACKNOWLEDGED)

    t = (
        await update(console, ticket_id, "dave", resolve=console_pb2.ResolveTicket(note="new disk"))
    ).ticket
    assert (t.state, t.resolved_by) == (TicketState.RESOLVED, "dave")
    assert t.HasField("resolved_at")

    t = (await update(console, ticket_id, "erin", close=console_pb2.CloseTicket())).ticket
    assert t.state == TicketState.CLOSED
    assert t.HasField("closed_at")

    reopened = await update(
        console, ticket_id, "frank", reopen=console_pb2.ReopenTicket(note="it is back")
    )
    t = reopened.ticket
    assert (t.state, t.reopen_count, t.resolved_by, t.tier) == (
        TicketState.REOPENED,
        1,
        "",
        Tier.L2,
    )
    assert not t.HasField("closed_at") and not t.HasField("resolved_at")
    # Fresh deadlines at its priority (P2: respond within 1 h, resolve within 8 h).
    assert t.priority == Priority.P2
    span = t.resolve_by.ToDatetime() - t.respond_by.ToDatetime()
    assert span == timedelta(hours=7)

    expected = [
        ("system", "opened"),
        ("alice", "taken"),
        ("alice", "assigned"),
        ("bob", "started"),
        ("carol", "comment"),
        ("bob", "escalated"),
        ("dave", "resolved"),
        ("erin", "closed"),
        ("frank", "reopened"),
    ]
    assert [(e.actor, e.kind) for e in reopened.events] == expected
    shown = await console.GetTicket(console_pb2.GetTicketRequest(ticket_id=ticket_id))
    assert [(e.actor, e.kind) for e in shown.events] == expected
    assert shown.events[5].message == (
        "escalated by bob: L1 -> L2; unassigned from bob: hardware fault"
    )


@pytest.mark.parametrize("ticket_id", [999, 2**63, 2**64 - 1])
async def test_unknown_ticket_is_not_found(console: Stub, ticket_id: int) -> None:
    error = await refused(console, ticket_id, take=console_pb2.TakeTicket())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == f"no ticket {ticket_id}"


async def test_refused_actions_are_failed_precondition(collector: Collector, console: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)

    error = await refused(console, ticket_id, reopen=console_pb2.ReopenTicket())
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"ticket {ticket_id} is new: only a resolved or closed ticket can be reopened",
    )
    bad_arguments: list[tuple[dict[str, Any], str]] = [
        ({"resolve": console_pb2.ResolveTicket()}, "resolution note is empty"),
        ({"comment": console_pb2.CommentTicket(text="  ")}, "comment is empty"),
        ({"assign": console_pb2.AssignTicket()}, "assignee is empty"),
    ]
    for action, message in bad_arguments:
        error = await refused(console, ticket_id, **action)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)

    # Nothing of that changed the ticket.
    shown = await console.GetTicket(console_pb2.GetTicketRequest(ticket_id=ticket_id))
    assert shown.ticket.state == TicketState.NEW
    assert [e.kind for e in shown.events] == ["opened"]

    for _ in range(3):
        await update(console, ticket_id, "alice", escalate=console_pb2.EscalateTicket())
    error = await refused(console, ticket_id, escalate=console_pb2.EscalateTicket())
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"ticket {ticket_id} is already at L4, the last tier",
    )

    await update(console, ticket_id, "alice", close=console_pb2.CloseTicket())
    error = await refused(console, ticket_id, close=console_pb2.CloseTicket())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == f"ticket {ticket_id} is closed already"
    error = await refused(console, ticket_id, take=console_pb2.TakeTicket())
    assert error.details() == f"ticket {ticket_id} is closed: reopen it first"


async def test_reopen_refused_while_another_ticket_is_open(
    collector: Collector, console: Stub
) -> None:
    machines = Machines(collector)
    agent_id = await machines.enroll(1)
    first = await machines.fail(agent_id, 0)
    await update(console, first, "alice", close=console_pb2.CloseTicket())
    second = await machines.fail(agent_id, 10)

    error = await refused(console, first, reopen=console_pb2.ReopenTicket())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        f"ticket {second} is already open for {DISK} on this machine: work that one"
    )


async def test_no_action_is_invalid_argument(collector: Collector, console: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)
    for ticket in (ticket_id, 999):
        error = await refused(console, ticket)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == (
            "no action: say take, assign, start, comment, escalate, resolve, close or reopen"
        )


# --- TagAgent -----------------------------------------------------------------------------------


async def test_tag_agent(collector: Collector, console: Stub) -> None:
    machines = Machines(collector)
    agent_id = await machines.enroll(1)

    tagged = await console.TagAgent(
        console_pb2.TagAgentRequest(agent_id=agent_id, add=["vip", "lab", "finance"])
    )
    assert (tagged.agent_id, list(tagged.tags)) == (agent_id, ["finance", "lab", "vip"])
    tagged = await console.TagAgent(
        console_pb2.TagAgentRequest(agent_id=agent_id, add=["vip"], remove=["lab"])
    )
    assert list(tagged.tags) == ["finance", "vip"]
    listed = await console.ListAgents(console_pb2.ListAgentsRequest())
    assert [list(a.tags) for a in listed.agents] == [["finance", "vip"]]

    # The tags set the impact of the machine's next ticket: vip is high, critical is urgent.
    ticket_id = await machines.fail(agent_id, 0)
    shown = await console.GetTicket(console_pb2.GetTicketRequest(ticket_id=ticket_id))
    assert shown.ticket.priority == Priority.P1


@pytest.mark.parametrize(
    ("add", "remove"), [(["VIP"], []), ([], ["-lab"]), (["ok", "not ok"], []), ([""], [])]
)
async def test_tag_agent_bad_tag_is_invalid_argument(
    collector: Collector, console: Stub, add: list[str], remove: list[str]
) -> None:
    agent_id = await Machines(collector).enroll(1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await console.TagAgent(
            console_pb2.TagAgentRequest(agent_id=agent_id, add=add, remove=remove)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "lowercase letters" in (caught.value.details() or "")
    detail = await console.GetAgent(console_pb2.GetAgentRequest(agent_id=agent_id))
    assert list(detail.agent.tags) == []


async def test_tag_unknown_agent_is_not_found(console: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await console.TagAgent(console_pb2.TagAgentRequest(agent_id="nope", add=["vip"]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "no agent 'nope'"


# --- ListTickets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    tickets: dict[str, int]
    pc2: str


@pytest.fixture
async def queue(collector: Collector, console: Stub) -> Queue:
    """disk: P2 on pc-1, new; dns: P3 network on pc-1, taken by bob; vip: P1 on pc-2 (tagged vip),
    new, missed its first response and went up to L2."""
    machines = Machines(collector)
    pc1, pc2 = await machines.enroll(1), await machines.enroll(2)
    await console.TagAgent(console_pb2.TagAgentRequest(agent_id=pc2, add=["vip"]))
    disk = await machines.fail(pc1, 0)  # opened at +2 min, respond by +62
    dns = await machines.fail(pc1, 3, CheckStatus.WARNING, DNS, Category.NETWORK)  # at +5
    vip = await machines.fail(pc2, 6)  # opened at +8 min, respond by +23
    await update(console, dns, "bob", take=console_pb2.TakeTicket())  # resolve by +3 days
    swept = await collector.store.run(lambda s: desk.sweep(s, later(30)))
    assert swept == [vip]
    return Queue({"disk": disk, "dns": dns, "vip": vip}, pc2)


async def listed(console: Stub, queue: Queue, **where: object) -> list[str]:
    reply = await console.ListTickets(console_pb2.ListTicketsRequest(**where))  # type: ignore[arg-type]
    names = {v: k for k, v in queue.tickets.items()}
    return [names[t.id] for t in reply.tickets]


async def test_list_tickets_filters(console: Stub, queue: Queue) -> None:
    cases: list[tuple[dict[str, object], set[str]]] = [
        ({}, {"disk", "dns", "vip"}),
        ({"states": [TicketState.NEW]}, {"disk", "vip"}),
        ({"states": [TicketState.ACKNOWLEDGED, TicketState.CLOSED]}, {"dns"}),
        ({"priorities": [Priority.P1, Priority.P3]}, {"vip", "dns"}),
        ({"priorities": [Priority.P4]}, set()),
        ({"tiers": [Tier.L2]}, {"vip"}),
        ({"tiers": [Tier.L1]}, {"disk", "dns"}),
        ({"categories": [Category.NETWORK]}, {"dns"}),
        ({"categories": [Category.HARDWARE]}, {"disk", "vip"}),
        ({"assignee": "bob"}, {"dns"}),
        ({"unassigned_only": True}, {"disk", "vip"}),
        ({"breached_only": True}, {"vip"}),
        ({"agent_id": queue.pc2}, {"vip"}),
        ({"open_only": True, "categories": [Category.HARDWARE], "tiers": [Tier.L1]}, {"disk"}),
    ]
    for where, expected in cases:
        assert set(await listed(console, queue, **where)) == expected, where


async def test_list_tickets_sort_orders(console: Stub, queue: Queue) -> None:
    # Urgency: vip's first response was due at +23 min, disk's at +62; dns is acknowledged, so
    # only its resolution (3 days) counts.
    urgency = ["vip", "disk", "dns"]
    assert await listed(console, queue) == urgency
    assert await listed(console, queue, sort=console_pb2.TICKET_SORT_URGENCY) == urgency
    assert await listed(console, queue, sort=console_pb2.TICKET_SORT_NEWEST) == [
        "vip",
        "dns",
        "disk",
    ]
    assert await listed(console, queue, limit=2) == urgency[:2]


@pytest.mark.parametrize(
    "where",
    [
        {"states": [99]},
        {"states": [0]},
        {"priorities": [7]},
        {"tiers": [TicketState.NEW, 5]},
        {"categories": [0]},
        {"sort": 3},
    ],
)
async def test_list_tickets_out_of_range_enum_is_invalid_argument(
    console: Stub, where: dict[str, object]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await console.ListTickets(console_pb2.ListTicketsRequest(**where))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("unknown filter value")
