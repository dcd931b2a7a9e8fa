"""ConsoleService servicer: thin, proto in, fleet/desk queries, proto out."""

from __future__ import annotations

import grpc

from collector import convert, desk, fleet
from collector.store.runner import Store
from remdiag.v1 import console_pb2, console_pb2_grpc

MAX_ID = 2**63 - 1  # BIGINT: larger ids cannot exist


class Console(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ListAgents(
        self, request: console_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListAgentsResponse:
        views = await self._store.run(fleet.list_agents)
        return console_pb2.ListAgentsResponse(agents=[convert.agent_message(v) for v in views])

    async def GetAgent(
        self, request: console_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.AgentDetail:
        found = await self._store.run(lambda s: fleet.get_agent(s, request.agent_id))
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.agent_id!r}")
        assert found is not None
        view, states = found
        return console_pb2.AgentDetail(
            agent=convert.agent_message(view),
            checks=[convert.check_state_message(s) for s in states],
        )

    async def ListTickets(
        self, request: console_pb2.ListTicketsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListTicketsResponse:
        rows = await self._store.run(
            lambda s: desk.list_tickets(
                s, open_only=request.open_only, agent_id=request.agent_id, limit=request.limit
            )
        )
        return console_pb2.ListTicketsResponse(tickets=[convert.ticket_message(r) for r in rows])

    async def GetTicket(
        self, request: console_pb2.GetTicketRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.TicketDetail:
        if request.ticket_id > MAX_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        detail = await self._store.run(lambda s: desk.get_ticket(s, request.ticket_id))
        if detail is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        assert detail is not None
        return convert.ticket_detail_message(detail)
