"""Guards every call: agents on Connect (credential, client certificate, revocation), and
ConsoleService on loopback only until console tokens and roles land.

On Connect the interceptor checks, in order: with TLS, a client certificate verified against
the collector's CA (missing: UNAUTHENTICATED); the agent id and bearer credential in the
metadata (UNAUTHENTICATED); that the agent is not revoked (UNAUTHENTICATED); with TLS, that
the certificate's CN is that agent id (another agent's: PERMISSION_DENIED) and that it is the
certificate of the agent's latest enrollment (UNAUTHENTICATED). The servicer then trusts the
agent id header: the interceptor has vouched for it. A stream whose agent is revoked while it
is open ends with UNAUTHENTICATED within `revocation_check_seconds`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc
from sqlalchemy.exc import SQLAlchemyError

from collector import fleet, tls
from collector.store.runner import Store

log = logging.getLogger(__name__)

AGENT_ID_HEADER = "x-remdiag-agent-id"
CONNECT_METHOD = "/remdiag.v1.AgentService/Connect"
CONSOLE_PREFIX = "/remdiag.v1.ConsoleService/"
MAX_AGENT_ID_CHARS = 64
MAX_CREDENTIAL_CHARS = 256


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

    def end_replaced(self, current: dict[str, str]) -> int:
        """End streams opened with a credential a later enrollment has replaced."""
        ended = 0
        for agent_id, streams in self._streams.items():
            for stream in streams:
                if current.get(agent_id, stream.credential_hash) != stream.credential_hash:
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
    """Authenticates Connect, ends revoked agents' streams, keeps the console on loopback."""

    def __init__(
        self, store: Store, *, tls_enabled: bool = False, revocation_check_seconds: float = 2.0
    ) -> None:
        self._store = store
        self._tls = tls_enabled
        self._every = revocation_check_seconds
        self.live = LiveStreams()

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
        if details.method.startswith(CONSOLE_PREFIX):
            return _loopback_only(handler)
        return handler

    async def watch_revocations(self) -> None:
        """Run until cancelled: end the live streams of agents revoked since they connected.

        Any collector process sharing the database sees a revocation the same way.
        """
        while True:
            await asyncio.sleep(self._every)
            live = self.live.agent_ids()
            if not live:
                continue
            try:
                revoked = await self._store.run(fleet.revoked_agent_ids)
                current = await self._store.run(
                    functools.partial(fleet.current_credentials, agent_ids=live)
                )
            except SQLAlchemyError as exc:
                log.warning("could not look for revoked agents: %s", exc)
                continue
            if self.live.end(revoked & live):
                log.info("ending the streams of revoked agents %s", ", ".join(revoked & live))
            if self.live.end_replaced(current):
                log.info("ended streams whose identity a later enrollment replaced")

    def _guard_connect(self, behaviour: Callable[..., AsyncIterator[Any]]) -> Any:
        async def connect(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
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


def _loopback_only(handler: Any) -> Any:
    """ConsoleService has no tokens yet: only local callers may use it."""

    async def refuse_remote(context: Any) -> None:
        if not is_loopback_peer(context.peer()):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "the console answers local callers only until console tokens and roles exist: "
                "run remdiag on the collector's machine",
            )

    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def guarded_unary_unary(request: Any, context: Any) -> Any:
            await refuse_remote(context)
            return await unary_unary(request, context)

        return handler._replace(unary_unary=guarded_unary_unary)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream

        async def guarded_unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await refuse_remote(context)
            async for reply in unary_stream(request, context):
                yield reply

        return handler._replace(unary_stream=guarded_unary_stream)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def guarded_stream_unary(requests: Any, context: Any) -> Any:
            await refuse_remote(context)
            return await stream_unary(requests, context)

        return handler._replace(stream_unary=guarded_stream_unary)
    stream_stream = handler.stream_stream

    async def guarded_stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        await refuse_remote(context)
        async for reply in stream_stream(requests, context):
            yield reply

    return handler._replace(stream_stream=guarded_stream_stream)
