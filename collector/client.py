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

    def list_tickets(
        self, request: console_pb2.ListTicketsRequest | None = None
    ) -> list[console_pb2.Ticket]:
        asked = request or console_pb2.ListTicketsRequest()
        reply = self._call(lambda: self._stub.ListTickets(asked, timeout=TIMEOUT_S))
        return list(reply.tickets)

    def update_ticket(self, request: console_pb2.UpdateTicketRequest) -> console_pb2.TicketDetail:
        reply: console_pb2.TicketDetail = self._call(
            lambda: self._stub.UpdateTicket(request, timeout=TIMEOUT_S)
        )
        return reply

    def tag_agent(self, agent_id: str, add: list[str], remove: list[str]) -> console_pb2.Agent:
        request = console_pb2.TagAgentRequest(agent_id=agent_id, add=add, remove=remove)
        reply: console_pb2.Agent = self._call(
            lambda: self._stub.TagAgent(request, timeout=TIMEOUT_S)
        )
        return reply

    def get_ticket(self, ticket_id: int) -> console_pb2.TicketDetail:
        request = console_pb2.GetTicketRequest(ticket_id=ticket_id)
        reply: console_pb2.TicketDetail = self._call(
            lambda: self._stub.GetTicket(request, timeout=TIMEOUT_S)
        )
        return reply

    def get_report(self, since_seconds: int) -> console_pb2.Report:
        request = console_pb2.GetReportRequest(since_seconds=since_seconds)
        reply: console_pb2.Report = self._call(
            lambda: self._stub.GetReport(request, timeout=TIMEOUT_S)
        )
        return reply

    def list_windows(self) -> list[console_pb2.MaintenanceWindow]:
        reply = self._call(
            lambda: self._stub.ListWindows(console_pb2.ListWindowsRequest(), timeout=TIMEOUT_S)
        )
        return list(reply.windows)

    def create_window(
        self, window: console_pb2.MaintenanceWindow, actor: str
    ) -> console_pb2.MaintenanceWindow:
        request = console_pb2.CreateWindowRequest(window=window, actor=actor)
        reply: console_pb2.MaintenanceWindow = self._call(
            lambda: self._stub.CreateWindow(request, timeout=TIMEOUT_S)
        )
        return reply

    def delete_window(self, window_id: int) -> None:
        request = console_pb2.DeleteWindowRequest(window_id=window_id)
        self._call(lambda: self._stub.DeleteWindow(request, timeout=TIMEOUT_S))

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
