"""ConsoleService (collector/console.py) on a real grpc.aio server over rows the factories build."""

from __future__ import annotations

from datetime import UTC

import grpc
import pytest

from collector.engine import TicketRules
from collector.ingest import ingest_batch
from collector.server import Collector
from remdiag.v1 import common_pb2, console_pb2, console_pb2_grpc
from remdiag.vocabulary import CheckStatus, Severity, TicketState
from tests.collector.factories import DISK, at, enrolled, result

RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2)
DNS = "network.dns"


async def send(
    collector: Collector, agent_id: str, sequence: int, status: CheckStatus, check_id: str = DISK
) -> None:
    now = at(sequence)
    await collector.store.run(
        lambda s: ingest_batch(s, agent_id, sequence, [result(status, check_id, now)], RULES, now)
    )


async def fleet_of_two(collector: Collector) -> tuple[str, str]:
    """pc-1 with a resolved disk ticket and an open DNS ticket; pc-2 healthy."""
    first = await collector.store.run(lambda s: enrolled(s, 1).agent_id)
    second = await collector.store.run(lambda s: enrolled(s, 2).agent_id)
    statuses = [CheckStatus.CRITICAL] * 3 + [CheckStatus.OK] * 2
    for sequence, status in enumerate(statuses, start=1):
        await send(collector, first, sequence, status)
    for sequence in (6, 7, 8):
        await send(collector, first, sequence, CheckStatus.WARNING, DNS)
    await send(collector, second, 1, CheckStatus.OK)
    return first, second


@pytest.fixture
def console(channel: grpc.aio.Channel) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


async def test_list_agents_shows_the_enrolled_machines(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    first, second = await fleet_of_two(collector)
    response = await console.ListAgents(console_pb2.ListAgentsRequest())
    listed = {a.agent_id: a for a in response.agents}
    assert set(listed) == {first, second}
    pc1 = listed[first]
    assert (pc1.hostname, pc1.os, pc1.agent_version) == ("pc-1", "Linux 6.8", "0.1.0")
    assert (pc1.open_tickets, pc1.last_sequence, pc1.connected) == (1, 8, False)
    assert pc1.last_seen_at.ToDatetime(tzinfo=UTC) == at(8)
    assert listed[second].open_tickets == 0


async def test_list_agents_of_an_empty_fleet(console: console_pb2_grpc.ConsoleServiceStub) -> None:
    assert list((await console.ListAgents(console_pb2.ListAgentsRequest())).agents) == []


async def test_get_agent_shows_its_check_states(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    first, _ = await fleet_of_two(collector)
    detail = await console.GetAgent(console_pb2.GetAgentRequest(agent_id=first))
    assert detail.agent.agent_id == first
    checks = {c.check_id: c for c in detail.checks}
    assert list(checks) == [DISK, DNS]
    disk, dns = checks[DISK], checks[DNS]
    assert (disk.status, disk.consecutive_passes, disk.consecutive_failures) == (
        common_pb2.CHECK_STATUS_OK,
        2,
        0,
    )
    assert (dns.status, dns.consecutive_failures) == (common_pb2.CHECK_STATUS_WARNING, 3)


async def test_get_agent_unknown_is_not_found(console: console_pb2_grpc.ConsoleServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await console.GetAgent(console_pb2.GetAgentRequest(agent_id="no-such-agent"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-agent" in (refused.value.details() or "")


async def test_list_tickets_newest_first_and_open_only(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    first, second = await fleet_of_two(collector)
    every = (await console.ListTickets(console_pb2.ListTicketsRequest())).tickets
    assert [(t.check_id, t.state) for t in every] == [
        (DNS, TicketState.NEW),
        (DISK, TicketState.RESOLVED),
    ]
    assert all(t.hostname == "pc-1" and t.agent_id == first for t in every)

    open_only = (await console.ListTickets(console_pb2.ListTicketsRequest(open_only=True))).tickets
    assert [t.check_id for t in open_only] == [DNS]
    assert open_only[0].severity == Severity.WARNING
    assert open_only[0].failure_count == 3

    limited = await console.ListTickets(console_pb2.ListTicketsRequest(limit=1))
    assert [t.check_id for t in limited.tickets] == [DNS]
    healthy = await console.ListTickets(console_pb2.ListTicketsRequest(agent_id=second))
    assert list(healthy.tickets) == []


async def test_get_ticket_returns_timeline_and_evidence(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    await fleet_of_two(collector)
    [resolved] = [
        t
        for t in (await console.ListTickets(console_pb2.ListTicketsRequest())).tickets
        if t.state == TicketState.RESOLVED
    ]
    detail = await console.GetTicket(console_pb2.GetTicketRequest(ticket_id=resolved.id))
    assert detail.ticket.id == resolved.id
    assert detail.ticket.resolved_at.ToDatetime(tzinfo=UTC) == at(5)
    assert [(e.kind, e.actor) for e in detail.events] == [
        ("opened", "system"),
        ("resolved", "system"),
    ]
    assert "failed 3 times in a row" in detail.events[0].message
    assert detail.events[1].message.startswith("resolved automatically")
    evidence = detail.evidence
    assert (evidence.check_id, evidence.status) == (DISK, common_pb2.CHECK_STATUS_CRITICAL)
    assert evidence.summary == result(CheckStatus.CRITICAL).summary
    assert evidence.remediation.startswith("Empty the recycle bin")
    assert [(v.name, v.number, v.unit) for v in evidence.values] == [
        ("used_percent", 99.0, "percent")
    ]
    assert dict(evidence.thresholds) == {"max_used_percent": 90}
    assert evidence.observed_at.ToDatetime(tzinfo=UTC) == at(3)


async def test_get_ticket_missing_is_not_found_with_a_message(
    console: console_pb2_grpc.ConsoleServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await console.GetTicket(console_pb2.GetTicketRequest(ticket_id=999))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == "no ticket 999"
