"""Builds and runs the collector's grpc.aio server: AgentService, ConsoleService, health."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collector import fleet
from collector.auth import AgentAuthInterceptor
from collector.config import CollectorSettings
from collector.console import Console
from collector.decoding import add_service
from collector.gateway import AgentGateway
from collector.store.runner import Store
from remdiag.v1 import agent_pb2, console_pb2

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVICES = ("remdiag.v1.AgentService", "remdiag.v1.ConsoleService")


class Collector:
    """A running collector: its server, the port it is bound to and its store."""

    def __init__(self, server: grpc.aio.Server, port: int, store: Store) -> None:
        self.server = server
        self.port = port
        self.store = store

    async def stop(self, grace: float = 2.0) -> None:
        await self.server.stop(grace)
        await asyncio.to_thread(self.store.close)


async def serve(settings: CollectorSettings, store: Store | None = None) -> Collector:
    """Start serving on settings.listen (port 0 binds a free port) and return at once."""
    if store is None:
        store = await asyncio.to_thread(Store, settings.database_url)
    await store.run(fleet.all_disconnected)
    server = grpc.aio.server(
        interceptors=[AgentAuthInterceptor(store)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # A second collector on a busy port must fail, not silently share it.
            ("grpc.so_reuseport", 0),
            # Agents ping to keep NAT mappings alive; allow it without a call in flight.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ],
    )
    # Not the generated add_*_to_server: those answer undecodable bytes with UNKNOWN.
    add_service(
        server, agent_pb2.DESCRIPTOR.services_by_name["AgentService"], AgentGateway(store, settings)
    )
    add_service(server, console_pb2.DESCRIPTOR.services_by_name["ConsoleService"], Console(store))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_insecure_port(settings.listen)
    except RuntimeError:  # grpcio raises where older releases returned 0
        port = 0
    if port == 0:
        await asyncio.to_thread(store.close)
        raise OSError(f"cannot listen on {settings.listen}: address in use or not available")
    await server.start()
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("collector listening on %s (port %d), store %s", settings.listen, port, store.url)
    return Collector(server, port, store)
