"""Guards every call: agents on Connect (credential, client certificate, revocation), and
ConsoleService (local callers, console tokens and roles, the audit log).

On Connect and Enroll the interceptor first waits for a turn among the handshakes in progress,
or refuses at once with UNAVAILABLE when too many wait (collector/admission.py). Then, on
Connect, it checks in order:
with TLS, a client certificate verified against the collector's CA (missing: UNAUTHENTICATED);
the agent id and bearer credential in the metadata (UNAUTHENTICATED); that the agent is not
revoked (UNAUTHENTICATED); with TLS, that the certificate's CN is that agent id (another
agent's: PERMISSION_DENIED) and that it is the certificate of the agent's latest enrollment
(UNAUTHENTICATED). The servicer then trusts the agent id header: the interceptor has vouched
for it. A stream whose agent is revoked while it is open ends with UNAUTHENTICATED within
`revocation_check_seconds`.

On ConsoleService (ConsoleGuard): a caller beyond loopback is refused (PERMISSION_DENIED);
then the console token in `authorization: Bearer ...` (none, unknown, revoked or expired:
UNAUTHENTICATED) and its role against the role the RPC declares (collector.console.REQUIRED_ROLE;
too weak, or an RPC missing from the table: PERMISSION_DENIED). The servicer reads who calls with
`principal()`. Each refusal, and each action once it has finished, is one row of the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import unquote

import grpc
from sqlalchemy.exc import SQLAlchemyError

from collector import audit, console_tokens, fleet, tls, tokens
from collector.admission import RETRY_AFTER_HEADER, HandshakeGate
from collector.console_tokens import Principal, Role
from collector.store.runner import Store

log = logging.getLogger(__name__)

AGENT_ID_HEADER = "x-remdiag-agent-id"
CONNECT_METHOD = "/remdiag.v1.AgentService/Connect"
ENROLL_METHOD = "/remdiag.v1.AgentService/Enroll"
CONSOLE_PREFIX = "/remdiag.v1.ConsoleService/"
MAX_AGENT_ID_CHARS = 64
MAX_CREDENTIAL_CHARS = 256
MAX_CACHED_TOKENS = 1024
REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
REPLACED_CHECK_TICKS = 15
"""Rounds of the revocation watcher between looks for identities a later enrollment replaced."""

_PRINCIPAL: ContextVar[Principal | None] = ContextVar("console_principal", default=None)


def bearer(metadata: dict[str, str]) -> str:
    value = metadata.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token if scheme.lower() == "bearer" else ""


def is_loopback_peer(peer: str) -> bool:
    """gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") is local."""
    scheme, _, rest = unquote(peer).partition(":")
    if scheme in ("unix", "unix-abstract"):
        return True
    if scheme not in ("ipv4", "ipv6"):
        return False
    try:
        address = ipaddress.ip_address(rest.rpartition(":")[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(eq=False)  # by identity: kept in sets
class LiveStream:
    """One open Connect: the task serving it, the credential it proved, why it was ended."""

    task: asyncio.Task[Any]
    credential_hash: str
    ended_because: str | None = None


class LiveStreams:
    """The Connect streams this process holds, so that a revocation can end them."""

    def __init__(self) -> None:
        self._streams: dict[str, set[LiveStream]] = {}

    def add(self, agent_id: str, task: asyncio.Task[Any], credential_hash: str) -> LiveStream:
        stream = LiveStream(task, credential_hash)
        self._streams.setdefault(agent_id, set()).add(stream)
        return stream

    def remove(self, agent_id: str, stream: LiveStream) -> None:
        streams = self._streams.get(agent_id, set())
        streams.discard(stream)
        if not streams:
            self._streams.pop(agent_id, None)

    def agent_ids(self) -> set[str]:
        return set(self._streams)

    def end(self, agent_ids: Iterable[str]) -> int:
        """End the streams of revoked `agent_ids` (their tasks are cancelled); how many."""
        ended = 0
        for agent_id in agent_ids:
            for stream in self._streams.get(agent_id, ()):
                ended += self._end(stream, f"agent {agent_id} was revoked by an admin")
        return ended

    def end_replaced(self, current: Mapping[str, str]) -> int:
        """End streams opened with a credential other than the agent's `current` one (its
        hash): a later enrollment has replaced it."""
        ended = 0
        for agent_id, credential_hash in current.items():
            for stream in self._streams.get(agent_id, ()):
                if stream.credential_hash != credential_hash:
                    ended += self._end(
                        stream, f"agent {agent_id} enrolled again: this identity is replaced"
                    )
        return ended

    @staticmethod
    def _end(stream: LiveStream, reason: str) -> int:
        if stream.ended_because is not None:
            return 0
        stream.ended_because = reason
        stream.task.cancel()
        return 1


class AgentAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates Connect, ends revoked agents' streams, guards the console (ConsoleGuard)."""

    def __init__(
        self,
        store: Store,
        *,
        tls_enabled: bool = False,
        revocation_check_seconds: float = 2.0,
        console_roles: Mapping[str, Role] | None = None,
        handshakes: HandshakeGate,
    ) -> None:
        self._store = store
        self.handshakes = handshakes
        self._tls = tls_enabled
        self._every = revocation_check_seconds
        self.live = LiveStreams()
        self.console = ConsoleGuard(store, console_roles or {}, revocation_check_seconds)

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: Any,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        if details.method == CONNECT_METHOD and handler.stream_stream is not None:
            return handler._replace(stream_stream=self._guard_connect(handler.stream_stream))
        if details.method == ENROLL_METHOD and handler.unary_unary is not None:
            return handler._replace(unary_unary=self._gate_enroll(handler.unary_unary))
        if details.method.startswith(CONSOLE_PREFIX):
            return self.console.wrap(handler, details.method.removeprefix(CONSOLE_PREFIX))
        return handler

    async def watch_revocations(self) -> None:
        """Run until cancelled: end the live streams of agents revoked since they connected.

        Any collector process sharing the database sees a revocation the same way. Identities
        replaced by a later enrollment are looked for every REPLACED_CHECK_TICKS rounds (30 s
        by default): that reads every live agent's credential, and an enrollment through this
        process ends the replaced stream at once anyway (the gateway calls `live.end_replaced`).
        """
        ticks = 0
        while True:
            await asyncio.sleep(self._every)
            live = self.live.agent_ids()
            if not live:
                continue
            ticks += 1
            try:
                revoked = await self._store.run(fleet.revoked_agent_ids)
                current = (
                    await self._store.run(
                        functools.partial(fleet.current_credentials, agent_ids=live)
                    )
                    if ticks % REPLACED_CHECK_TICKS == 0
                    else {}
                )
            except SQLAlchemyError as exc:
                log.warning("could not look for revoked agents: %s", exc)
                continue
            if self.live.end(revoked & live):
                log.info("ending the streams of revoked agents %s", ", ".join(revoked & live))
            if self.live.end_replaced(current):
                log.info("ended streams whose identity a later enrollment replaced")

    async def _refuse_when_busy(self, context: Any) -> None:
        """Refuse the call (UNAVAILABLE, saying when to come back) if no handshake can even wait
        for a turn. Before any database work: refusing must cost next to nothing."""
        if not self.handshakes.full():
            return
        now = time.monotonic()
        unreported = self.handshakes.refuse(now)
        if unreported:
            log.warning(
                "refused %d connects and enrollments: %d handshakes wait already ([limits] "
                "max_waiting_handshakes); the agents retry after a pause",
                unreported,
                self.handshakes.waiting,
            )
        retry_after_ms = round(self.handshakes.retry_after_s(now) * 1000)
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"the collector is busy with other agents' handshakes: retry in "
            f"{retry_after_ms / 1000:.0f} s",
            trailing_metadata=((RETRY_AFTER_HEADER, str(retry_after_ms)),),
        )

    def _gate_enroll(self, behaviour: Callable[..., Awaitable[Any]]) -> Any:
        """A fleet enrolling at once (a rollout, a restored database) takes turns too."""

        async def enroll(request: Any, context: Any) -> Any:
            await self._refuse_when_busy(context)
            async with self.handshakes.turn():
                return await behaviour(request, context)

        return enroll

    def _guard_connect(self, behaviour: Callable[..., AsyncIterator[Any]]) -> Any:
        async def connect(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            await self._refuse_when_busy(context)
            async with self.handshakes.turn() as turn:
                try:
                    agent_id = await self._authenticate(context)
                except SQLAlchemyError as exc:
                    log.warning("cannot authenticate an agent: the database failed: %s", exc)
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector's store failed")
                task = asyncio.current_task()
                assert task is not None, "gRPC serves each call in a task"
                credential = bearer(
                    {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
                )
                stream = self.live.add(agent_id, task, fleet.hash_credential(credential))
                try:
                    async for reply in behaviour(requests, context):
                        turn.done()  # the Welcome is on its way: the next handshake may start
                        yield reply
                except asyncio.CancelledError:
                    if stream.ended_because is None:
                        raise  # the server is stopping, or the client went away
                    task.uncancel()
                    log.warning("stream closed: %s", stream.ended_because)
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, stream.ended_because)
                finally:
                    self.live.remove(agent_id, stream)

        return connect

    async def _authenticate(self, context: Any) -> str:
        """The agent this Connect speaks for; aborts the call when it is not authentic."""
        peer: tls.PeerCertificate | None = None
        if self._tls:
            peer = tls.peer_certificate(context.auth_context())
            if peer is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "Connect needs the client certificate enrollment gave (remdiag-agent "
                    "enroll), on the collector's agents port",
                )
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        agent_id = metadata.get(AGENT_ID_HEADER, "")
        credential = bearer(metadata)
        auth: fleet.AgentAuth | None = None
        if (
            agent_id
            and credential
            and len(agent_id) <= MAX_AGENT_ID_CHARS
            and len(credential) <= MAX_CREDENTIAL_CHARS
        ):
            auth = await self._store.run(lambda s: fleet.authenticate(s, agent_id, credential))
        if auth is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "unknown agent or wrong credential: enroll again (remdiag-agent enroll)",
            )
        assert auth is not None
        if auth.revoked:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, f"agent {agent_id} was revoked by an admin"
            )
        if peer is not None:
            if peer.common_name != agent_id:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the client certificate belongs to another agent than the credential",
                )
            if peer.sha256 != auth.certificate_sha256:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "this client certificate was replaced by a later enrollment: enroll again",
                )
        return agent_id


class ConsoleGuard:
    """ConsoleService's guard: local callers only, a live console token whose role the RPC
    allows, the principal for the servicer, and an audit row per action and per refusal."""

    def __init__(
        self, store: Store, required: Mapping[str, Role], cache_seconds: float = 2.0
    ) -> None:
        self._store = store
        self._required = dict(required)
        self._cache_seconds = cache_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def wrap(self, handler: Any, method: str) -> Any:
        """`handler` (of ConsoleService's `method`, e.g. "UpdateTicket") behind the guard."""
        if handler.unary_unary is not None:
            unary_unary = handler.unary_unary

            async def guarded_unary_unary(request: Any, context: Any) -> Any:
                principal = await self._admit(method, request, context)
                token = _PRINCIPAL.set(principal)
                response, failure = None, None
                try:
                    response = await unary_unary(request, context)
                    return response
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    _PRINCIPAL.reset(token)
                    await self._audit_call(method, principal, request, context, response, failure)

            return handler._replace(unary_unary=guarded_unary_unary)
        if handler.unary_stream is not None:
            unary_stream = handler.unary_stream

            async def guarded_unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                principal = await self._admit(method, request, context)
                token = _PRINCIPAL.set(principal)
                failure: BaseException | None = None
                try:
                    async for reply in unary_stream(request, context):
                        yield reply
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    with contextlib.suppress(ValueError):  # resumed in another context
                        _PRINCIPAL.reset(token)
                    await self._audit_call(method, principal, request, context, None, failure)

            return handler._replace(unary_stream=guarded_unary_stream)
        # ConsoleService has no client-streaming calls: refuse any that appear unguarded.
        return None

    async def _admit(self, method: str, request: Any, context: Any) -> Principal:
        """The caller's principal, or abort (after writing the refusal to the audit log)."""
        if not is_loopback_peer(context.peer()):
            await self._refuse(
                context,
                method,
                request,
                None,
                grpc.StatusCode.PERMISSION_DENIED,
                "the console answers local callers only: run remdiag on the collector's "
                "machine (or through its console socket)",
            )
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        secret = bearer(metadata)
        if not secret:
            await self._refuse(
                context,
                method,
                request,
                None,
                grpc.StatusCode.UNAUTHENTICATED,
                "no console token: pass --token, set REMDIAG_TOKEN or REMDIAG_TOKEN_FILE "
                "(an admin makes one: remdiag token create --role technician --name NAME)",
            )
        try:
            principal = await self._verify(secret)
        except SQLAlchemyError as exc:
            log.warning("cannot check a console token: the database failed: %s", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector's store failed")
        if principal is None:
            await self._refuse(
                context,
                method,
                request,
                None,
                grpc.StatusCode.UNAUTHENTICATED,
                "the console token is unknown, revoked or expired: ask an admin for a new one",
            )
        assert principal is not None
        needed = self._required.get(method)
        if needed is None:
            await self._refuse(
                context,
                method,
                request,
                principal,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} is open to no role",
            )
        assert needed is not None
        if not principal.role.allows(needed):
            await self._refuse(
                context,
                method,
                request,
                principal,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs the {needed.value} role; the token of {principal.name} "
                f"has the {principal.role.value} role",
            )
        return principal

    async def _verify(self, secret: str) -> Principal | None:
        """Checked against the database; a verified token is trusted for `cache_seconds`, so a
        revoked one stops working within that time."""
        key = tokens.hash_token(secret)
        now = time.monotonic()
        cached = self._verified.get(key)
        if cached is not None and now - cached[1] < self._cache_seconds:
            return cached[0]
        found = await self._store.run(
            lambda s: console_tokens.authenticate(s, secret, datetime.now(UTC))
        )
        if found is None:
            self._verified.pop(key, None)
            return None
        if len(self._verified) >= MAX_CACHED_TOKENS:
            self._verified.clear()
        self._verified[key] = (found, now)
        return found

    async def _refuse(
        self,
        context: Any,
        method: str,
        request: Any,
        principal: Principal | None,
        code: grpc.StatusCode,
        message: str,
    ) -> NoReturn:
        target, _ = audit.describe(method, request)
        await self._write(principal, method, target, code.name, message)
        await context.abort(code, message)
        raise AssertionError("context.abort returned")  # pragma: no cover

    async def _audit_call(
        self,
        method: str,
        principal: Principal,
        request: Any,
        context: Any,
        response: Any,
        failure: BaseException | None,
    ) -> None:
        code = _status(context, failure)
        if audit.is_read(method) and code not in REFUSALS:
            return
        target, detail = audit.describe(method, request, response)
        if code is not grpc.StatusCode.OK:
            detail = context.details() or str(failure or "") or detail
        outcome = audit.OK if code is grpc.StatusCode.OK else code.name
        await self._write(principal, method, target, outcome, detail)

    async def _write(
        self, principal: Principal | None, method: str, target: str, outcome: str, detail: str
    ) -> None:
        """In its own transaction, and never failing the call: a failed write is logged."""
        entry = audit.Entry(
            at=datetime.now(UTC),
            actor=principal.name if principal else audit.ANONYMOUS,
            role=principal.role.value if principal else "",
            action=method,
            target=target,
            outcome=outcome,
            detail=detail,
        )
        # Its own task: a call cancelled while the row is written still gets its row.
        task = asyncio.create_task(self._store_entry(entry), name="audit")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    async def _store_entry(self, entry: audit.Entry) -> None:
        try:
            await self._store.run(lambda s: audit.record(s, entry))
        except Exception:  # the audit log must never fail a console call
            log.exception("could not write the audit log entry %s", entry)


def principal() -> Principal:
    """Who the current ConsoleService call speaks for, as the interceptor authenticated it.

    A context variable: read it in the servicer's coroutine, not in a worker thread."""
    found = _PRINCIPAL.get()
    if found is None:
        raise RuntimeError("no console principal: ConsoleService runs behind ConsoleGuard")
    return found


def _status(context: Any, failure: BaseException | None) -> grpc.StatusCode:
    """The status a finished call ends with: aborted or set by the servicer, cancelled by the
    client, failed with an exception (UNKNOWN), or OK."""
    if isinstance(failure, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if code is None:
        if failure is not None and not isinstance(failure, grpc.aio.AbortError):
            return grpc.StatusCode.UNKNOWN
        return grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    for candidate in grpc.StatusCode:
        if candidate.value[0] == code:
            return candidate
    return grpc.StatusCode.UNKNOWN
