"""A synchronous ConsoleService client for the CLI, turning gRPC failures into plain sentences."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.struct_pb2 import Struct

from remdiag.v1 import console_pb2, console_pb2_grpc

T = TypeVar("T")
TIMEOUT_S = 10.0


class ConsoleError(Exception):
    """A console call that failed, worded for the person at the terminal."""


class DiagnosticWaitTimeout(Exception):
    """The caller stopped waiting; the diagnostic goes on (remdiag diagnostics shows it)."""


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Sends the console token with every call: `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)


class ConsoleClient:
    def __init__(self, address: str, token: str | None = None) -> None:
        """`token`: the console token sent with every call (none: the collector refuses)."""
        self.address = address
        self._channel = grpc.insecure_channel(address)
        channel = (
            grpc.intercept_channel(self._channel, _BearerToken(token)) if token else self._channel
        )
        self._stub = console_pb2_grpc.ConsoleServiceStub(channel)

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
        self, window: console_pb2.MaintenanceWindow, actor: str = ""
    ) -> console_pb2.MaintenanceWindow:
        """`actor` is ignored by the collector: the console token names who creates it."""
        request = console_pb2.CreateWindowRequest(window=window, actor=actor)
        reply: console_pb2.MaintenanceWindow = self._call(
            lambda: self._stub.CreateWindow(request, timeout=TIMEOUT_S)
        )
        return reply

    def delete_window(self, window_id: int) -> None:
        request = console_pb2.DeleteWindowRequest(window_id=window_id)
        self._call(lambda: self._stub.DeleteWindow(request, timeout=TIMEOUT_S))

    def run_diagnostic(
        self, request: console_pb2.RunDiagnosticRequest, timeout_s: float | None = None
    ) -> Iterator[console_pb2.Diagnostic]:
        """Each change of the run as it arrives; ConsoleError when refused or cut off."""
        try:
            for event in self._stub.RunDiagnostic(request, timeout=timeout_s):
                yield event.diagnostic
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DiagnosticWaitTimeout() from None
            raise self._error(exc) from None

    def list_diagnostics(
        self, request: console_pb2.ListDiagnosticsRequest
    ) -> list[console_pb2.Diagnostic]:
        reply = self._call(lambda: self._stub.ListDiagnostics(request, timeout=TIMEOUT_S))
        return list(reply.diagnostics)

    def list_actions(self) -> list[console_pb2.Action]:
        request = console_pb2.ListActionsRequest()
        reply = self._call(lambda: self._stub.ListActions(request, timeout=TIMEOUT_S))
        return list(reply.actions)

    def list_audit(self, request: console_pb2.ListAuditRequest) -> list[console_pb2.AuditEntry]:
        reply = self._call(lambda: self._stub.ListAudit(request, timeout=TIMEOUT_S))
        return list(reply.entries)

    def apply_policies(
        self, specs: Sequence[Mapping[str, Any]], dry_run: bool = False
    ) -> console_pb2.ApplyPolicyResponse:
        """Apply policy documents together (all or none); `dry_run` only says what would change."""
        structs = []
        for spec in specs:
            struct = Struct()
            struct.update(spec)
            structs.append(struct)
        request = console_pb2.ApplyPolicyRequest(specs=structs, dry_run=dry_run)
        reply: console_pb2.ApplyPolicyResponse = self._call(
            lambda: self._stub.ApplyPolicy(request, timeout=TIMEOUT_S)
        )
        return reply

    def list_policies(self) -> list[console_pb2.PolicyDocument]:
        request = console_pb2.ListPoliciesRequest()
        reply = self._call(lambda: self._stub.ListPolicies(request, timeout=TIMEOUT_S))
        return list(reply.policies)

    def get_policy(self, name: str) -> console_pb2.PolicyDocument:
        request = console_pb2.GetPolicyRequest(name=name)
        reply: console_pb2.PolicyDocument = self._call(
            lambda: self._stub.GetPolicy(request, timeout=TIMEOUT_S)
        )
        return reply

    def delete_policy(self, name: str) -> console_pb2.DeletePolicyResponse:
        request = console_pb2.DeletePolicyRequest(name=name)
        reply: console_pb2.DeletePolicyResponse = self._call(
            lambda: self._stub.DeletePolicy(request, timeout=TIMEOUT_S)
        )
        return reply

    def effective_policy(self, machine: str) -> console_pb2.EffectivePolicy:
        request = console_pb2.GetEffectivePolicyRequest(machine=machine)
        reply: console_pb2.EffectivePolicy = self._call(
            lambda: self._stub.GetEffectivePolicy(request, timeout=TIMEOUT_S)
        )
        return reply

    def create_task(self, task: console_pb2.MaintenanceTask) -> console_pb2.MaintenanceTask:
        request = console_pb2.CreateTaskRequest(task=task)
        reply: console_pb2.MaintenanceTask = self._call(
            lambda: self._stub.CreateTask(request, timeout=TIMEOUT_S)
        )
        return reply

    def list_tasks(self) -> list[console_pb2.MaintenanceTask]:
        request = console_pb2.ListTasksRequest()
        reply = self._call(lambda: self._stub.ListTasks(request, timeout=TIMEOUT_S))
        return list(reply.tasks)

    def delete_task(self, task_id: int) -> None:
        request = console_pb2.DeleteTaskRequest(task_id=task_id)
        self._call(lambda: self._stub.DeleteTask(request, timeout=TIMEOUT_S))

    def task_history(self, task_id: int, limit: int = 0) -> console_pb2.TaskHistory:
        request = console_pb2.GetTaskHistoryRequest(task_id=task_id, limit=limit)
        reply: console_pb2.TaskHistory = self._call(
            lambda: self._stub.GetTaskHistory(request, timeout=TIMEOUT_S)
        )
        return reply

    def create_recurring(
        self, recurring: console_pb2.RecurringTicket
    ) -> console_pb2.RecurringTicket:
        request = console_pb2.CreateRecurringTicketRequest(recurring=recurring)
        reply: console_pb2.RecurringTicket = self._call(
            lambda: self._stub.CreateRecurringTicket(request, timeout=TIMEOUT_S)
        )
        return reply

    def list_recurring(self) -> list[console_pb2.RecurringTicket]:
        request = console_pb2.ListRecurringTicketsRequest()
        reply = self._call(lambda: self._stub.ListRecurringTickets(request, timeout=TIMEOUT_S))
        return list(reply.recurring)

    def delete_recurring(self, recurring_id: int) -> None:
        request = console_pb2.DeleteRecurringTicketRequest(recurring_id=recurring_id)
        self._call(lambda: self._stub.DeleteRecurringTicket(request, timeout=TIMEOUT_S))

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.RpcError) -> ConsoleError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ConsoleError(
                f"cannot reach the collector at {self.address}: is it running? "
                "(remdiag up, or remdiag collector serve)"
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ConsoleError(f"the collector at {self.address} did not answer in time")
        return ConsoleError(exc.details() or code.name.lower())
