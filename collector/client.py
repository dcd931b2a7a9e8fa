"""A synchronous ConsoleService client for the CLI, turning gRPC failures into plain sentences."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

from remdiag.v1 import console_pb2, console_pb2_grpc

T = TypeVar("T")
TIMEOUT_S = 10.0


class ConsoleError(Exception):
    """A console call that failed, worded for the person at the terminal."""


class ConsoleClient:
    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address)
        self._stub = console_pb2_grpc.ConsoleServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def list_agents(self) -> list[console_pb2.Agent]:
        reply = self._call(
            lambda: self._stub.ListAgents(console_pb2.ListAgentsRequest(), timeout=TIMEOUT_S)
        )
        return list(reply.agents)

    def get_agent(self, agent_id: str) -> console_pb2.AgentDetail:
        reply: console_pb2.AgentDetail = self._call(
            lambda: self._stub.GetAgent(
                console_pb2.GetAgentRequest(agent_id=agent_id), timeout=TIMEOUT_S
            )
        )
        return reply

    def list_tickets(self, open_only: bool = False, agent_id: str = "") -> list[console_pb2.Ticket]:
        request = console_pb2.ListTicketsRequest(open_only=open_only, agent_id=agent_id)
        reply = self._call(lambda: self._stub.ListTickets(request, timeout=TIMEOUT_S))
        return list(reply.tickets)

    def get_ticket(self, ticket_id: int) -> console_pb2.TicketDetail:
        request = console_pb2.GetTicketRequest(ticket_id=ticket_id)
        reply: console_pb2.TicketDetail = self._call(
            lambda: self._stub.GetTicket(request, timeout=TIMEOUT_S)
        )
        return reply

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ConsoleError(
                    f"cannot reach the collector at {self.address}: is it running? "
                    "(remdiag up, or remdiag collector serve)"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ConsoleError(
                    f"the collector at {self.address} did not answer in time"
                ) from None
            raise ConsoleError(exc.details() or code.name.lower()) from None
