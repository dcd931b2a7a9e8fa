"""Authenticates agents on AgentService.Connect from the credential enrollment gave them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from collector import fleet
from collector.store.runner import Store

AGENT_ID_HEADER = "x-remdiag-agent-id"
CONNECT_METHOD = "/remdiag.v1.AgentService/Connect"


def bearer(metadata: dict[str, str]) -> str:
    value = metadata.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token if scheme.lower() == "bearer" else ""


class AgentAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses a Connect whose agent id and credential do not match an enrolled agent.

    The servicer then trusts the agent id header: the interceptor has vouched for it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: Any,
    ) -> Any:
        if details.method != CONNECT_METHOD:
            return await continuation(details)
        metadata = {k: v for k, v in details.invocation_metadata if isinstance(v, str)}
        agent_id = metadata.get(AGENT_ID_HEADER, "")
        credential = bearer(metadata)
        if agent_id and credential and len(agent_id) <= 64 and len(credential) <= 256:
            ok = await self._store.run(lambda s: fleet.verify_credential(s, agent_id, credential))
            if ok:
                return await continuation(details)
        return grpc.stream_stream_rpc_method_handler(_refuse)


async def _refuse(_requests: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "unknown agent or wrong credential: enroll again (remdiag-agent enroll)",
    )
