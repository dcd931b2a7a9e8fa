"""ConsoleService servicer: thin, proto in, fleet/desk queries, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector import (
    actions,
    audit,
    convert,
    desk,
    diagnostics,
    fleet,
    policies,
    recurring,
    report,
    tasks,
    windows,
)
from collector.auth import principal
from collector.config import CheckPolicySettings
from collector.console_tokens import Role
from collector.diagnostics import DiagnosticError, NoSuchMachineError
from collector.dispatch import Dispatcher
from collector.ingest import DEFAULT_DESK
from collector.lifecycle import ActionError, ArgumentError
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.v1 import common_pb2, console_pb2, console_pb2_grpc
from remdiag.vocabulary import DiagnosticState

MAX_ID = 2**63 - 1  # BIGINT: larger ids cannot exist


# The role each RPC needs; an admin may do everything a technician may. The interceptor
# (collector.auth.ConsoleGuard) enforces it and refuses any RPC missing here.
REQUIRED_ROLE: dict[str, Role] = {
    "ListAgents": Role.TECHNICIAN,
    "GetAgent": Role.TECHNICIAN,
    "ListTickets": Role.TECHNICIAN,
    "GetTicket": Role.TECHNICIAN,
    "UpdateTicket": Role.TECHNICIAN,
    "ListWindows": Role.TECHNICIAN,
    "GetReport": Role.TECHNICIAN,
    "RunDiagnostic": Role.TECHNICIAN,
    "ListDiagnostics": Role.TECHNICIAN,
    "ListActions": Role.TECHNICIAN,
    "TagAgent": Role.ADMIN,
    "CreateWindow": Role.ADMIN,
    "DeleteWindow": Role.ADMIN,
    "ListAudit": Role.ADMIN,
    "ListTasks": Role.TECHNICIAN,
    "GetTaskHistory": Role.TECHNICIAN,
    "CreateTask": Role.ADMIN,
    "DeleteTask": Role.ADMIN,
    "ListRecurringTickets": Role.TECHNICIAN,
    "CreateRecurringTicket": Role.ADMIN,
    "DeleteRecurringTicket": Role.ADMIN,
    "ListPolicies": Role.TECHNICIAN,
    "GetPolicy": Role.TECHNICIAN,
    "GetEffectivePolicy": Role.TECHNICIAN,
    "ApplyPolicy": Role.ADMIN,
    "DeletePolicy": Role.ADMIN,
}


def _actor(context: grpc.aio.ServicerContext) -> str:
    """Who is calling: the name of their console token (request `actor` fields are ignored).

    Call it in the coroutine, not inside work given to the store (another thread)."""
    return principal().name


class Console(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        desk_settings: DeskSettings = DEFAULT_DESK,
        config_checks: Mapping[str, CheckPolicySettings] | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._desk = desk_settings
        self._config_checks = config_checks or {}
        """The collector config's [checks]: the lowest layer of every machine's policy."""

    async def RunDiagnostic(
        self, request: console_pb2.RunDiagnosticRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[console_pb2.DiagnosticEvent]:
        try:
            args = convert.struct_to_dict(request.args)
        except convert.InvalidMessageError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"args: {exc}")
        if request.ticket_id > MAX_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        expires_in = (
            timedelta(seconds=request.expires_in_seconds) if request.expires_in_seconds else None
        )
        changes = self._dispatcher.run(
            request.agent_id,
            request.action,
            args,
            _actor(context),
            expires_in=expires_in,
            ticket_id=request.ticket_id,
        )
        try:
            async for view in changes:
                yield console_pb2.DiagnosticEvent(diagnostic=convert.diagnostic_message(view))
                if request.no_wait:
                    return
        except DiagnosticError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NoSuchMachineError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        finally:
            await changes.aclose()

    async def ListDiagnostics(
        self, request: console_pb2.ListDiagnosticsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListDiagnosticsResponse:
        try:
            states = [DiagnosticState(s) for s in request.states]
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown state: {exc}")
        try:
            found = await self._store.run(
                lambda s: diagnostics.list_diagnostics(
                    s,
                    machine=request.agent_id,
                    states=states,
                    ticket_id=min(request.ticket_id, MAX_ID),
                    limit=request.limit,
                )
            )
        except DiagnosticError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NoSuchMachineError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return console_pb2.ListDiagnosticsResponse(
            diagnostics=[convert.diagnostic_message(v) for v in found]
        )

    async def ListActions(
        self, request: console_pb2.ListActionsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListActionsResponse:
        return console_pb2.ListActionsResponse(actions=convert.action_messages(actions.catalog()))

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
        if request.mine:
            if request.assignee:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "give mine or assignee, not both"
                )
            mine = console_pb2.ListTicketsRequest()
            mine.CopyFrom(request)
            mine.assignee = _actor(context)
            request = mine
        try:
            where = convert.ticket_filter(request)
        except convert.InvalidMessageError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        rows = await self._store.run(lambda s: desk.list_tickets(s, where))
        return console_pb2.ListTicketsResponse(tickets=[convert.ticket_message(r) for r in rows])

    async def UpdateTicket(
        self, request: console_pb2.UpdateTicketRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.TicketDetail:
        if request.ticket_id > MAX_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        try:
            action = convert.ticket_action(request)
        except convert.InvalidMessageError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        now, actor = datetime.now(UTC), _actor(context)
        try:
            detail = await self._store.run(
                lambda s: desk.update_ticket(s, request.ticket_id, actor, action, now, self._desk)
            )
        except ArgumentError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except ActionError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        if detail is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        assert detail is not None
        return convert.ticket_detail_message(detail)

    async def TagAgent(
        self, request: console_pb2.TagAgentRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.Agent:

        def tag(s: Session) -> tuple[fleet.AgentView | None, common_pb2.Policy | None]:
            view = fleet.tag(s, request.agent_id, request.add, request.remove)
            # Its tags choose its policies: the new effective policy, if that changed.
            changed = policies.policy_if_changed(s, request.agent_id, self._config_checks)
            return view, changed

        try:
            view, changed = await self._store.run(tag)
        except fleet.TagError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if view is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.agent_id!r}")
        assert view is not None
        if changed is not None:
            await self._dispatcher.push_policies([(request.agent_id, changed)])
        return convert.agent_message(view)

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

    async def GetReport(
        self, request: console_pb2.GetReportRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.Report:
        longest = int(report.MAX_PERIOD.total_seconds())
        if not 1 <= request.since_seconds <= longest:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"since_seconds must be between 1 and {longest} (366 days), "
                f"got {request.since_seconds}",
            )
        until = datetime.now(UTC)
        since = until - timedelta(seconds=request.since_seconds)
        built = await self._store.run(
            lambda s: report.build(report.load(s, since, until), since, until, now=until)
        )
        return convert.report_message(built)

    async def ListWindows(
        self, request: console_pb2.ListWindowsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListWindowsResponse:
        rows = await self._store.run(windows.list_windows)
        now = datetime.now(UTC)
        return console_pb2.ListWindowsResponse(
            windows=[convert.window_message(r, now) for r in rows]
        )

    async def CreateWindow(
        self, request: console_pb2.CreateWindowRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.MaintenanceWindow:
        now, actor = datetime.now(UTC), _actor(context)
        try:
            spec = convert.window_spec(request.window)
            row = await self._store.run(lambda s: windows.create(s, spec, actor, now))
        except windows.WindowError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return convert.window_message(row, now)

    async def DeleteWindow(
        self, request: console_pb2.DeleteWindowRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.DeleteWindowResponse:
        found = request.window_id <= MAX_ID and await self._store.run(
            lambda s: windows.delete(s, request.window_id)
        )
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no window {request.window_id}")
        return console_pb2.DeleteWindowResponse()

    async def ListAudit(
        self, request: console_pb2.ListAuditRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListAuditResponse:
        since = convert.from_timestamp(request.since) if request.HasField("since") else None
        rows = await self._store.run(
            lambda s: audit.list_entries(
                s, actor=request.actor, action=request.action, since=since, limit=request.limit
            )
        )
        return console_pb2.ListAuditResponse(entries=[convert.audit_message(r) for r in rows])

    async def ApplyPolicy(
        self, request: console_pb2.ApplyPolicyRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ApplyPolicyResponse:
        if not request.specs:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give at least one policy")
        try:
            documents = [policies.parse(convert.struct_to_dict(spec)) for spec in request.specs]
        except (policies.PolicyError, convert.InvalidMessageError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        now, actor = datetime.now(UTC), _actor(context)
        try:
            outcome = await self._store.run(
                lambda s: policies.apply(
                    s, documents, actor, now, self._config_checks, dry_run=request.dry_run
                )
            )
        except policies.PolicyError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except IntegrityError:
            await context.abort(
                grpc.StatusCode.ABORTED, "another change to the same policy came first: try again"
            )
        await self._push_policies(outcome.pushes)
        return policies.apply_response(outcome)

    async def ListPolicies(
        self, request: console_pb2.ListPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListPoliciesResponse:
        rows = await self._store.run(policies.list_policies)
        return console_pb2.ListPoliciesResponse(
            policies=[policies.document_message(r) for r in rows]
        )

    async def GetPolicy(
        self, request: console_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.PolicyDocument:
        row = await self._store.run(lambda s: policies.get_policy(s, request.name))
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no policy {request.name!r}")
        assert row is not None
        return policies.document_message(row)

    async def DeletePolicy(
        self, request: console_pb2.DeletePolicyRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.DeletePolicyResponse:
        try:
            outcome = await self._store.run(
                lambda s: policies.delete(s, request.name, self._config_checks)
            )
        except policies.PolicyError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        if outcome is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no policy {request.name!r}")
        assert outcome is not None
        await self._push_policies(outcome.pushes)
        return console_pb2.DeletePolicyResponse(machines_affected=outcome.machines_affected)

    async def GetEffectivePolicy(
        self, request: console_pb2.GetEffectivePolicyRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.EffectivePolicy:
        def find(s: Session) -> policies.MachinePolicy:
            return policies.machine_policy(
                s, diagnostics.find_agent(s, request.machine), self._config_checks
            )

        try:
            found = await self._store.run(find)
        except DiagnosticError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NoSuchMachineError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return policies.effective_message(found)

    async def _push_policies(self, pushes: Sequence[policies.Push]) -> None:
        """Send each changed policy to the machines whose stream this process holds, or the
        collector holding it (collector/bus.py); the others get theirs in their next Welcome."""
        await self._dispatcher.push_policies([(push.agent_id, push.policy) for push in pushes])

    async def CreateTask(
        self, request: console_pb2.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.MaintenanceTask:
        now, actor = datetime.now(UTC), _actor(context)
        try:
            spec = convert.task_spec(request.task)
            row = await self._store.run(lambda s: tasks.create(s, spec, actor, now))
        except tasks.TaskError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return convert.task_message(row)

    async def ListTasks(
        self, request: console_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListTasksResponse:
        rows = await self._store.run(tasks.list_tasks)
        return console_pb2.ListTasksResponse(tasks=[convert.task_message(r) for r in rows])

    async def DeleteTask(
        self, request: console_pb2.DeleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.DeleteTaskResponse:
        found = request.task_id <= MAX_ID and await self._store.run(
            lambda s: tasks.delete(s, request.task_id)
        )
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {request.task_id}")
        return console_pb2.DeleteTaskResponse()

    async def GetTaskHistory(
        self, request: console_pb2.GetTaskHistoryRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.TaskHistory:
        found = None
        if request.task_id <= MAX_ID:
            found = await self._store.run(
                lambda s: tasks.history(s, request.task_id, request.limit)
            )
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {request.task_id}")
        assert found is not None
        return convert.task_history_message(*found)

    async def CreateRecurringTicket(
        self, request: console_pb2.CreateRecurringTicketRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.RecurringTicket:
        now, actor = datetime.now(UTC), _actor(context)
        try:
            spec = convert.recurring_spec(request.recurring)
            row = await self._store.run(lambda s: recurring.create(s, spec, actor, now))
        except tasks.TaskError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return convert.recurring_message(row)

    async def ListRecurringTickets(
        self, request: console_pb2.ListRecurringTicketsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListRecurringTicketsResponse:
        rows = await self._store.run(recurring.list_recurring)
        return console_pb2.ListRecurringTicketsResponse(
            recurring=[convert.recurring_message(r) for r in rows]
        )

    async def DeleteRecurringTicket(
        self, request: console_pb2.DeleteRecurringTicketRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.DeleteRecurringTicketResponse:
        found = request.recurring_id <= MAX_ID and await self._store.run(
            lambda s: recurring.delete(s, request.recurring_id)
        )
        if not found:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no recurring ticket {request.recurring_id}"
            )
        return console_pb2.DeleteRecurringTicketResponse()
