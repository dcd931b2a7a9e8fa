"""Builds and runs the collector's grpc.aio server: AgentService, ConsoleService, health."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from collector import fleet, tls
from collector.admission import HandshakeGate
from collector.auth import AgentAuthInterceptor
from collector.bus import Bus
from collector.config import CollectorSettings
from collector.console import REQUIRED_ROLE, Console
from collector.decoding import add_service
from collector.dispatch import DiagnosticHub, Dispatcher
from collector.gateway import AgentGateway
from collector.intake import Intake
from collector.jobs import run_jobs
from collector.notify import Notifier
from collector.store.runner import Store
from collector.tls import Pki, PkiError
from remdiag.v1 import agent_pb2, console_pb2

log = logging.getLogger(__name__)

SERVICES = ("remdiag.v1.AgentService", "remdiag.v1.ConsoleService")
CONSOLE_SOCKET = "console.sock"


class Collector:
    """A running collector: its server, the port it is bound to and its store.

    With TLS, `port` is the agents' port (mutual TLS), `enroll_port` the enrollment port
    (TLS without client certificates) and `console_socket` a local plaintext Unix socket for
    the CLI; `pki` holds the CA agents pin.
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        store: Store,
        *,
        enroll_port: int | None = None,
        pki: Pki | None = None,
        console_socket: str | None = None,
        background: tuple[asyncio.Task[None], ...] = (),
        handshakes: HandshakeGate | None = None,
    ) -> None:
        self.server = server
        self.handshakes = handshakes
        self.port = port
        self.store = store
        self.enroll_port = enroll_port
        self.pki = pki
        self.console_socket = console_socket
        self._background = background

    async def stop(self, grace: float = 2.0) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.server.stop(grace)
        await asyncio.to_thread(self.store.close)


async def serve(settings: CollectorSettings, store: Store | None = None) -> Collector:
    """Start serving on settings.listen (port 0 binds a free port) and return at once."""
    if store is None:
        store = await asyncio.to_thread(Store, settings.database_url)
    await store.run(fleet.all_disconnected)
    pki = None
    if settings.tls_active:
        try:
            pki = await asyncio.to_thread(
                tls.load_or_create,
                settings.data_path,
                settings.certificate_names,
                datetime.now(UTC),
            )
        except (PkiError, OSError):
            await asyncio.to_thread(store.close)
            raise
    handshakes = HandshakeGate(
        settings.limits.max_concurrent_handshakes, settings.limits.max_waiting_handshakes
    )
    auth = AgentAuthInterceptor(
        store,
        tls_enabled=pki is not None,
        revocation_check_seconds=settings.revocation_check_seconds,
        console_roles=REQUIRED_ROLE,
        handshakes=handshakes,
    )
    server = grpc.aio.server(
        interceptors=[auth],
        options=[
            ("grpc.max_receive_message_length", settings.limits.max_message_bytes),
            ("grpc.max_send_message_length", settings.limits.max_message_bytes),
            # A second collector on a busy port must fail, not silently share it.
            ("grpc.so_reuseport", 0),
            # Agents ping to keep NAT mappings alive; allow it without a call in flight.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            # Ping idle agents too, so a silently dead connection is closed within ~80 s.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
        ],
    )
    # Not the generated add_*_to_server: those answer undecodable bytes with UNKNOWN.
    dispatcher = Dispatcher(store, settings.diagnostics, DiagnosticHub())
    intake = Intake(store, settings.tickets.rules(), settings.desk, settings.checks)
    add_service(
        server,
        agent_pb2.DESCRIPTOR.services_by_name["AgentService"],
        AgentGateway(
            store,
            settings,
            dispatcher,
            intake,
            pki,
            on_enrolled=lambda agent_id, credential_hash: auth.live.end_replaced(
                {agent_id: credential_hash}
            ),
        ),
    )
    add_service(
        server,
        console_pb2.DESCRIPTOR.services_by_name["ConsoleService"],
        Console(store, dispatcher, settings.desk, config_checks=settings.checks),
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enroll_port = None
    try:
        if pki is None:
            port = _bind(server, settings.listen, None)
        else:
            port = _bind(server, settings.listen, pki.server_credentials(True))
            enroll_port = _bind(
                server, settings.enroll_listen_address, pki.server_credentials(False)
            )
    except OSError:
        await asyncio.to_thread(store.close)
        raise
    console_socket = _bind_console_socket(server, pki)
    await server.start()
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    shown = make_url(store.url).render_as_string(hide_password=True)
    log.info("collector listening on %s (port %d), store %s", settings.listen, port, shown)
    if pki is not None:
        log.info(
            "TLS: agents' port %d (mutual TLS), enrollment port %d; agents pin %s",
            port,
            enroll_port,
            pki.ca_path,
        )
    if console_socket:
        log.info("local console: remdiag agents --collector %s", console_socket)
    writer = asyncio.create_task(intake.run(), name="intake")
    watcher = asyncio.create_task(auth.watch_revocations(), name="revocations")
    reopen_window = timedelta(minutes=settings.tickets.reopen_window_minutes)
    jobs = asyncio.create_task(
        run_jobs(store, settings.desk, reopen_window, dispatcher, settings.retention), name="jobs"
    )
    notifier = asyncio.create_task(Notifier(store, settings.notify).run(), name="notify")
    # Other collectors on the same PostgreSQL: requests queued there for agents held here.
    listener = asyncio.create_task(
        Bus(store, dispatcher, settings.checks).run(), name="dispatch-bus"
    )
    return Collector(
        server,
        port,
        store,
        enroll_port=enroll_port,
        pki=pki,
        console_socket=console_socket,
        background=(writer, watcher, jobs, notifier, listener),
        handshakes=handshakes,
    )


def _bind_console_socket(server: grpc.aio.Server, pki: Pki | None) -> str | None:
    """With TLS, a plaintext Unix socket in the (0700) data dir lets the local `remdiag` CLI
    reach the console; Connect there is refused (no client certificate)."""
    if pki is None:
        return None
    address = f"unix:{pki.data_dir.resolve() / CONSOLE_SOCKET}"
    try:
        _bind(server, address, None)
    except OSError as exc:  # a path too long for a socket, or no Unix sockets here
        log.warning("no local console socket: %s", exc)
        return None
    return address


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            port: int = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpcio raises where older releases returned 0
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address}: address in use or not available")
    return port
