"""AgentService servicer: thin, turns stream messages into calls on fleet and ingest."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import NoReturn

import grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector import convert, diagnostics, fleet, policies
from collector.auth import AGENT_ID_HEADER
from collector.config import CollectorSettings
from collector.convert import InvalidMessageError
from collector.diagnostics import DiagnosticView
from collector.dispatch import Dispatcher
from collector.ingest import Batch
from collector.intake import Beat, Intake, IntakeClosedError
from collector.limits import AgentRate
from collector.store.runner import Store
from collector.tls import InvalidCsrError, IssuedCertificate, Pki, parse_csr
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2

log = logging.getLogger(__name__)

# Trailing metadata of an INVALID_ARGUMENT that names the refused sequence.
REJECTED_SEQUENCE_HEADER = "x-remdiag-rejected-sequence"


def _now() -> datetime:
    return datetime.now(UTC)


class Refusal(Exception):
    """A refusal of the agent's message, to be sent as the stream's status."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class RefuseLater:
    """The `abort` of a context, for the task that reads the agent's messages while another
    writes to it: it raises a Refusal that the writing task turns into the status."""

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple[tuple[str, str], ...] = (),
    ) -> NoReturn:
        raise Refusal(code, details, trailing_metadata)


class AgentGateway(agent_pb2_grpc.AgentServiceServicer):
    def __init__(
        self,
        store: Store,
        settings: CollectorSettings,
        dispatcher: Dispatcher,
        intake: Intake,
        pki: Pki | None = None,
        on_enrolled: Callable[[str, str], object] = lambda agent_id, credential_hash: None,
    ) -> None:
        self._store = store
        self._on_enrolled = on_enrolled
        """Told each enrollment's agent id and credential hash."""
        self._dispatcher = dispatcher
        self._intake = intake
        self._settings = settings
        self._limits = settings.limits
        # Per agent, not per stream, so reconnecting does not reset a flooding agent's rate.
        self._rates: dict[str, AgentRate] = {}
        self._pki = pki
        """With TLS: the CA that signs agents' certificates."""

    async def Enroll(
        self, request: agent_pb2.EnrollRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.EnrollResponse:
        try:
            machine = convert.machine_info(request.machine, request.agent_version)
        except InvalidMessageError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        now = _now()
        certify: Callable[[str], IssuedCertificate] | None = None
        if self._pki is not None:
            if not request.csr_pem:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "this collector uses TLS: the request must carry csr_pem (update the agent)",
                )
            try:
                csr = parse_csr(request.csr_pem)
            except InvalidCsrError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            certify = partial(self._pki.issue_client_certificate, csr, now=now)
        token = request.enrollment_token
        open_enrollment = self._settings.open_enrollment

        def enroll(session: Session) -> fleet.Enrollment:
            return fleet.enroll(
                session, machine, now, token=token, open_enrollment=open_enrollment, certify=certify
            )

        try:
            try:
                enrollment = await self._store.run(enroll)
            except IntegrityError:
                # The same machine enrolled concurrently; now it exists, so this rotates it.
                enrollment = await self._store.run(enroll)
        except fleet.TokenRefusedError as exc:
            log.warning("enrollment of %s refused: %s", machine.hostname, exc)
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "enrollment token not recognised, expired, used up or revoked"
                if token
                else "an enrollment token is required (remdiag token create --enroll)",
            )
        except fleet.MachineRevokedError as exc:
            log.warning("revoked agent %s (%s) tried to enroll", exc.agent_id, machine.hostname)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this machine was revoked (agent {exc.agent_id}); an admin must reinstate it "
                f"(remdiag agents reinstate {exc.agent_id}) before it can enroll again",
            )
        log.info("enrolled %s as %s", machine.hostname, enrollment.agent_id)
        # A stream of the identity this enrollment replaced ends now, if this process holds it.
        self._on_enrolled(enrollment.agent_id, fleet.hash_credential(enrollment.credential))
        return agent_pb2.EnrollResponse(
            agent_id=enrollment.agent_id,
            credential=enrollment.credential,
            client_certificate_pem=enrollment.certificate_pem,
            ca_certificate_pem=self._pki.ca_pem if self._pki is not None else b"",
        )

    async def Connect(
        self,
        requests: AsyncIterator[agent_pb2.AgentMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[agent_pb2.CollectorMessage]:
        agent_id = dict(context.invocation_metadata())[AGENT_ID_HEADER]
        try:
            first = await asyncio.wait_for(
                anext(requests, None), self._limits.hello_timeout_seconds
            )
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no hello within {self._limits.hello_timeout_seconds:g} s of opening the stream",
            )
        if first is None or first.WhichOneof("payload") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be hello")
        assert first is not None
        hello = first.hello
        if hello.agent_id and hello.agent_id != agent_id:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "hello names another agent than the credential"
            )
        try:
            machine = convert.machine_info(hello.machine, hello.agent_version)
        except InvalidMessageError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        now = _now()
        checks = self._settings.checks

        def welcome(
            s: Session,
        ) -> tuple[fleet.Connection, common_pb2.Policy | None, list[DiagnosticView]]:
            # One transaction: after a collector restart the whole fleet waits on the store.
            connection = fleet.connected(
                s, agent_id, machine, now, hello.dropped, hello.policy_version
            )
            policy = policies.policy_on_connect(
                s, agent_id, connection.tags, connection.policy_version, checks
            )
            return connection, policy, diagnostics.claim_pending(s, agent_id, now)

        rate = self._rates.setdefault(agent_id, AgentRate.start(self._limits, time.monotonic()))
        # Replies to the agent's messages and requests from technicians share one way down.
        outgoing: asyncio.Queue[agent_pb2.CollectorMessage] = asyncio.Queue()
        # Attached before the policy is read: a change from then on is pushed after the welcome.
        self._dispatcher.hub.attach(agent_id, outgoing)
        try:
            connection, policy, pending = await self._store.run(welcome)
        except BaseException:
            self._dispatcher.hub.detach(agent_id, outgoing)
            raise
        last = connection.last_sequence
        log.info("agent %s (%s) connected, acked through %d", agent_id, machine.hostname, last)
        reader = asyncio.create_task(self._read(agent_id, requests, rate, outgoing))
        next_message: asyncio.Task[agent_pb2.CollectorMessage] | None = None
        try:
            yield agent_pb2.CollectorMessage(
                welcome=agent_pb2.Welcome(
                    agent_id=agent_id,
                    last_acked_sequence=last,
                    policy=policy,
                    heartbeat_interval_seconds=self._settings.heartbeat_interval_seconds,
                )
            )
            await self._dispatcher.hand_over(pending)
            while True:
                next_message = asyncio.create_task(outgoing.get())
                done, _ = await asyncio.wait(
                    {next_message, reader}, return_when=asyncio.FIRST_COMPLETED
                )
                if next_message in done:
                    yield next_message.result()
                    continue
                next_message.cancel()
                try:
                    reader.result()  # the agent's error, raised here
                except Refusal as refusal:
                    # Refused here, in the task that writes: never a status amid a write.
                    await context.abort(
                        refusal.code, refusal.details, trailing_metadata=refusal.trailing_metadata
                    )
                while not outgoing.empty():  # the last acks
                    yield outgoing.get_nowait()
                return
        finally:
            reader.cancel()
            if next_message is not None:
                next_message.cancel()
            self._dispatcher.hub.detach(agent_id, outgoing)
            stopped = _now()
            # Shielded: a cancelled stream (collector stopping) must still record the disconnect.
            await asyncio.shield(self._gone(agent_id, connection.connection_id, stopped))
            log.info("agent %s disconnected", agent_id)

    async def _gone(self, agent_id: str, connection_id: str, stopped: datetime) -> None:
        # Unless it is back on another stream here: what was sent on this one is queued again.
        requeue = not self._dispatcher.hub.holds(agent_id)

        def gone(s: Session) -> None:
            fleet.disconnected(s, agent_id, connection_id, stopped)
            if requeue:
                diagnostics.requeue(s, agent_id, stopped)

        await self._store.run(gone)

    async def _read(
        self,
        agent_id: str,
        requests: AsyncIterator[agent_pb2.AgentMessage],
        rate: AgentRate,
        outgoing: asyncio.Queue[agent_pb2.CollectorMessage],
    ) -> None:
        async for message in requests:
            reply = await self._handle(agent_id, message, rate, outgoing, RefuseLater())
            if reply is not None:
                outgoing.put_nowait(reply)

    async def _handle(
        self,
        agent_id: str,
        message: agent_pb2.AgentMessage,
        rate: AgentRate,
        outgoing: asyncio.Queue[agent_pb2.CollectorMessage],
        context: RefuseLater,
    ) -> agent_pb2.CollectorMessage | None:
        kind = message.WhichOneof("payload")
        broken = rate.admit(len(message.results.results), time.monotonic())
        if broken is not None:
            # Not a refusal of the data: the agent keeps it and sends it again after a pause.
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{broken} (limit {self._limits.max_messages_per_minute} messages, "
                f"{self._limits.max_results_per_minute} results): slow down",
            )
        now = _now()
        if kind == "heartbeat":
            heartbeat = message.heartbeat
            try:
                written = self._intake.heartbeat(
                    Beat(agent_id, now, heartbeat.dropped, heartbeat.policy_version)
                )
            except IntakeClosedError as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}: reconnect")
            # Not awaited: the stream reads on, and a lagging agent's policy follows when known.
            written.add_done_callback(partial(_send_policy, outgoing))
            return None
        if kind == "diagnostic":
            try:
                reported = convert.diagnostic_update(message.diagnostic, self._limits)
            except InvalidMessageError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"diagnostic refused: {exc}")
            await self._dispatcher.on_update(agent_id, reported)
            return None
        if kind not in ("results", "inventory"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unexpected message {kind}")
        try:
            sequence = convert.sequence_number(message.sequence)
            if kind == "inventory":
                return await self._store_inventory(agent_id, sequence, message, now)
            results = convert.incoming_results(message.results, now, self._limits)
        except InvalidMessageError as exc:
            # Name the sequence so the agent drops it instead of resending it forever.
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{kind} {message.sequence} refused: {exc}",
                trailing_metadata=((REJECTED_SEQUENCE_HEADER, str(message.sequence)),),
            )
        try:
            outcome = await self._intake.ingest(Batch(agent_id, sequence, results, now))
        except IntakeClosedError as exc:
            # Not stored, not acked: the agent sends it again to whichever collector it reaches.
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}: reconnect")
        for opened in outcome.opened_tickets:
            log.info("ticket %d opened for agent %s", opened.ticket_id, agent_id)
            await self._dispatcher.triage(agent_id, opened)
        return _ack(outcome.acked_through)

    async def _store_inventory(
        self, agent_id: str, sequence: int, message: agent_pb2.AgentMessage, now: datetime
    ) -> agent_pb2.CollectorMessage:
        """Decoded in the store's transaction, and only when it is not the inventory stored."""
        inventory, limits = message.inventory, self._limits
        acked = await self._store.run(
            lambda s: fleet.store_inventory(
                s,
                agent_id,
                sequence,
                lambda: convert.inventory_update(inventory, limits),
                now,
                convert.inventory_digest(inventory),
            )
        )
        return _ack(acked)


def _send_policy(
    outgoing: asyncio.Queue[agent_pb2.CollectorMessage],
    written: asyncio.Future[common_pb2.Policy | None],
) -> None:
    """After a heartbeat is written: the Policy of an agent that runs another version."""
    if written.cancelled() or written.exception() is not None:
        return  # the collector is stopping: the stream ends, the agent says hello elsewhere
    behind = written.result()
    if behind is not None:
        outgoing.put_nowait(agent_pb2.CollectorMessage(policy=behind))


def _ack(through: int) -> agent_pb2.CollectorMessage:
    return agent_pb2.CollectorMessage(ack=agent_pb2.Ack(acked_through=through))
