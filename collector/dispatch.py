"""Which agent streams this collector holds, and who waits on which diagnostic: in memory.

The database is the record (collector/diagnostics.py); this only moves messages between the
console call that asked and the agent's live stream in this process. A request for a machine
held by no stream here stays queued in the database and is sent when the machine connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from collector import actions, bus, convert, diagnostics
from collector.actions import DiagnosticsPolicy
from collector.diagnostics import DiagnosticView
from collector.ingest import OpenedTicket
from collector.store.runner import Store
from remdiag.v1 import agent_pb2, common_pb2
from remdiag.vocabulary import DiagnosticState

log = logging.getLogger(__name__)
TRIAGE_ACTOR = "auto-triage"


class DiagnosticHub:
    def __init__(self) -> None:
        self._streams: dict[str, asyncio.Queue[agent_pb2.CollectorMessage]] = {}
        self._watchers: defaultdict[str, set[asyncio.Queue[DiagnosticView]]] = defaultdict(set)
        # What watchers last saw of each request: a change both seen here and re-read after
        # another collector's announcement (collector/bus.py) is published once.
        self._seen: dict[str, tuple[int, str, datetime | None]] = {}

    def attach(self, agent_id: str, outgoing: asyncio.Queue[agent_pb2.CollectorMessage]) -> None:
        """The agent's newest stream takes its messages from now on."""
        self._streams[agent_id] = outgoing

    def detach(self, agent_id: str, outgoing: asyncio.Queue[agent_pb2.CollectorMessage]) -> None:
        if self._streams.get(agent_id) is outgoing:
            del self._streams[agent_id]

    def holds(self, agent_id: str) -> bool:
        return agent_id in self._streams

    def held(self) -> list[str]:
        """The agents whose streams this collector holds."""
        return list(self._streams)

    def watching(self, request_id: str) -> bool:
        return request_id in self._watchers

    def watched(self) -> list[str]:
        """The requests someone here waits on."""
        return list(self._watchers)

    def send(self, agent_id: str, message: agent_pb2.CollectorMessage) -> bool:
        """Hand a message to the agent's stream; False when this collector does not hold it."""
        outgoing = self._streams.get(agent_id)
        if outgoing is None:
            return False
        outgoing.put_nowait(message)
        return True

    def watch(self, request_id: str) -> asyncio.Queue[DiagnosticView]:
        changes: asyncio.Queue[DiagnosticView] = asyncio.Queue()
        self._watchers[request_id].add(changes)
        return changes

    def unwatch(self, request_id: str, changes: asyncio.Queue[DiagnosticView]) -> None:
        watchers = self._watchers.get(request_id)
        if watchers is not None:
            watchers.discard(changes)
            if not watchers:
                del self._watchers[request_id]
                self._seen.pop(request_id, None)

    def publish(self, view: DiagnosticView) -> None:
        watchers = self._watchers.get(view.row.id)
        if not watchers:
            return
        seen = (view.row.state, view.row.progress, view.row.finished_at)
        if self._seen.get(view.row.id) == seen:
            return
        self._seen[view.row.id] = seen
        for changes in watchers:
            changes.put_nowait(view)


class Dispatcher:
    """Diagnostics from request to outcome: store, hand to the agent's stream, tell watchers.

    Shared by the console (technicians' requests), the gateway (agents' streams and answers)
    and auto-triage (requests when a ticket opens).
    """

    def __init__(self, store: Store, settings: DiagnosticsPolicy, hub: DiagnosticHub) -> None:
        self._store = store
        self._settings = settings
        self.hub = hub

    async def submit(
        self,
        machine: str,
        action: str,
        args: dict[str, Any],
        requested_by: str,
        *,
        expires_in: timedelta | None = None,
        ticket_id: int = 0,
    ) -> DiagnosticView:
        """Validate and queue a request, sent at once if this collector holds the machine's
        stream. DiagnosticError / NoSuchMachineError when refused."""
        queued = await self._queue(machine, action, args, requested_by, expires_in, ticket_id)
        if self.hub.holds(queued.row.agent_id):
            await self._send(queued.row.id)
        return queued

    async def run(
        self,
        machine: str,
        action: str,
        args: dict[str, Any],
        requested_by: str,
        *,
        expires_in: timedelta | None = None,
        ticket_id: int = 0,
    ) -> AsyncGenerator[DiagnosticView, None]:
        """As `submit`, then every change of the request until it ends (or the caller stops)."""
        queued = await self._queue(machine, action, args, requested_by, expires_in, ticket_id)
        changes = self.hub.watch(queued.row.id)  # before sending: no change can be missed
        try:
            yield queued
            if self.hub.holds(queued.row.agent_id):
                await self._send(queued.row.id)
            while True:
                view = await changes.get()
                yield view
                if DiagnosticState(view.row.state).is_final:
                    return
        finally:
            self.hub.unwatch(queued.row.id, changes)

    async def _queue(
        self,
        machine: str,
        action: str,
        args: dict[str, Any],
        requested_by: str,
        expires_in: timedelta | None,
        ticket_id: int,
    ) -> DiagnosticView:
        valid = self.vet(action, args)
        lifetime = expires_in or timedelta(seconds=self._settings.default_expiry_seconds)
        if lifetime > timedelta(seconds=self._settings.max_expiry_seconds):
            raise diagnostics.DiagnosticError(
                f"expiry is at most {self._settings.max_expiry_seconds} s"
            )
        now = datetime.now(UTC)
        return await self._store.run(
            lambda s: diagnostics.request(
                s, machine, action, valid, requested_by, now, lifetime, ticket_id
            )
        )

    def vet(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments (defaults filled in) of a request this collector may send;
        DiagnosticError when the action is unknown, its arguments bad, or it is a remediation
        the admin's policy does not allow."""
        valid = actions.validate(action, args)
        if actions.is_remediation(action) and not self._settings.allows_remediation(action):
            raise diagnostics.DiagnosticError(
                f"{action} changes the machine and remediation is off by admin policy "
                "([diagnostics] remediation_enabled, remediation_actions)"
            )
        return valid

    def holds(self, agent_id: str) -> bool:
        """Whether this collector holds the machine's stream."""
        return self.hub.holds(agent_id)

    async def push_policies(self, pushes: Sequence[tuple[str, common_pb2.Policy]]) -> None:
        """Send changed policies to the machines whose stream this collector holds; announce the
        others to the collectors on the same PostgreSQL (collector/bus.py). A machine held by
        none gets its policy in its next Welcome, and a lost push after its next heartbeat."""
        elsewhere = [
            agent_id
            for agent_id, policy in pushes
            if not self.hub.send(agent_id, agent_pb2.CollectorMessage(policy=policy))
        ]
        if elsewhere and self._store.engine.dialect.name == "postgresql":

            def announce(session: Session) -> None:
                for agent_id in elsewhere:
                    bus.announce(session, bus.POLICY, agent_id)

            await self._store.run(announce)

    async def deliver_pending(self, agent_id: str) -> None:
        """Send what waits for a machine this collector holds."""
        now = datetime.now(UTC)
        await self.hand_over(
            await self._store.run(lambda s: diagnostics.claim_pending(s, agent_id, now))
        )

    async def hand_over(self, claimed: Sequence[DiagnosticView]) -> None:
        """Send requests claimed for sending (diagnostics.claim_pending) to their machines."""
        for view in claimed:
            await self._hand_over(view)

    async def on_update(self, agent_id: str, reported: diagnostics.Update) -> None:
        now = datetime.now(UTC)
        view = await self._store.run(
            lambda s: diagnostics.apply_update(s, agent_id, reported, now, actions.is_remediation)
        )
        if view is not None:
            self.hub.publish(view)

    async def expire(self) -> list[str]:
        now = datetime.now(UTC)
        expired = await self._store.run(
            lambda s: diagnostics.expire(s, now) if bus.run_once(s, "diagnostics-expiry") else []
        )
        for view in expired:
            self.hub.publish(view)
        return [view.row.id for view in expired]

    async def triage(self, agent_id: str, opened: OpenedTicket) -> None:
        """Run the diagnostics that fit a ticket that just opened, attached to it."""
        for step in self._settings.triage_for(opened.check_id, opened.category.label):
            try:
                await self.submit(
                    agent_id, step.action, step.args, TRIAGE_ACTOR, ticket_id=opened.ticket_id
                )
            except (diagnostics.DiagnosticError, LookupError) as exc:
                log.warning("auto-triage of ticket %d: %s", opened.ticket_id, exc)

    async def _send(self, request_id: str) -> None:
        now = datetime.now(UTC)
        view = await self._store.run(lambda s: diagnostics.claim(s, request_id, now))
        if view is not None:
            await self._hand_over(view)

    async def _hand_over(self, view: DiagnosticView) -> None:
        if self.hub.send(view.row.agent_id, convert.diagnostic_request_message(view)):
            self.hub.publish(view)
            return
        # The stream ended between the claim and now: back in the queue for the next one.
        now = datetime.now(UTC)
        await self._store.run(lambda s: diagnostics.requeue(s, view.row.agent_id, now))
