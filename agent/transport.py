"""Holds the agent's stream to the collector: enroll, hello, resend, batches, heartbeats, acks.

Reconnects with exponential backoff and full jitter; never gives up while the agent runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from agent import convert
from agent.config import TlsSettings
from agent.diagnostics.model import Outcome, Request
from agent.enroll import CaFileError, EnrollmentError, enroll, open_channel, trusted_ca
from agent.facts.machine import MachineFacts
from agent.identity import Identity, forget_identity, load_identity
from agent.inventory import InventoryTracker
from agent.outbox import Outbox
from agent.pushback import asked_pause
from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from remdiag.vocabulary import DiagnosticState

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    # Ping an idle stream so a half-open connection is noticed within ~40 s.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
WELCOME_TIMEOUT_S = 30.0
DiagnosticHandler = Callable[[Request, Callable[[str], Awaitable[None]]], Awaitable[Outcome]]
"""Runs a requested diagnostic (the agent's runner), reporting progress lines on the way."""
# A stream refused soon after it opened (say, for what it sent first) does not reset the
# backoff, or the agent would reconnect in a tight loop.
STABLE_STREAM_S = 30.0
# Trailing metadata naming the sequence the collector refused as invalid.
REJECTED_SEQUENCE_HEADER = "x-remdiag-rejected-sequence"


@dataclass(frozen=True)
class TransportSettings:
    collector: str
    state_dir: Path
    enrollment_token: str = ""
    batch_max_results: int = 100
    batch_max_delay_seconds: float = 2.0
    max_unacked_batches: int = 8
    reconnect_initial_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    inventory_interval_seconds: float = 900.0
    tls: TlsSettings = field(default_factory=TlsSettings)


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(maximum, initial * 2**attempt)]."""
    return rng.uniform(0.0, min(maximum, initial * 2 ** min(attempt, 30)))


def reconnect_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random, asked: float | None
) -> float:
    """Backoff with full jitter; when the collector asked for a pause, that pause stretched by up
    to a tenth, never beyond `maximum`. The collector gives each refused agent a time of its
    own already; the stretch only keeps agents told nearly the same time from arriving at one
    instant. (A stretch of up to half spread a refused fleet's return over half as long again,
    and the collector idled while it waited for them.)"""
    if asked is None:
        return backoff_delay(attempt, initial, maximum, rng)
    return min(maximum, asked * rng.uniform(1.0, 1.1))


@dataclass
class Backoff:
    """When to try the collector again: full-jitter exponential backoff that starts afresh
    after a stream that lasted STABLE_STREAM_S, or the pause a busy collector asked for."""

    initial: float
    maximum: float
    rng: random.Random
    attempt: int = 0

    def next_delay(self, lasted_s: float | None, asked: float | None) -> float:
        """`lasted_s`: how long the stream that just ended had been up (None: it never was)."""
        if lasted_s is not None and lasted_s >= STABLE_STREAM_S:
            self.attempt = 0  # it worked for a while: start backing off afresh
        delay = reconnect_delay(self.attempt, self.initial, self.maximum, self.rng, asked)
        self.attempt += 1
        return delay


class Transport:
    def __init__(
        self,
        settings: TransportSettings,
        machine: MachineFacts,
        outbox: Outbox,
        on_policy: Callable[[common_pb2.Policy], None],
        inventory: InventoryTracker,
        rng: random.Random | None = None,
        on_diagnostic: DiagnosticHandler | None = None,
        policy_version: Callable[[], int] = lambda: 0,
    ) -> None:
        self._settings = settings
        self._machine = machine
        self._outbox = outbox
        self._on_policy = on_policy
        # The version of the policy the agent runs, for Hello and heartbeats.
        self._policy_version = policy_version
        self._inventory = inventory
        self._on_diagnostic = on_diagnostic
        self._diagnostics: set[asyncio.Task[None]] = set()
        # grpc.aio allows one write at a time; diagnostics' answers come from their own tasks.
        self._write_lock = asyncio.Lock()
        self._rng = rng or random.Random()
        self._connected_at = 0.0
        self._asked_pause: float | None = None
        """The pause the collector asked for when it last refused the stream or enrollment."""
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        self.connected = asyncio.Event()
        self.heartbeat_interval = 30.0

    def wake(self) -> None:
        """New results are in the outbox."""
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(
            self._settings.reconnect_initial_seconds,
            self._settings.reconnect_max_seconds,
            self._rng,
        )
        while True:
            self._asked_pause = None
            try:
                identity, ca_pem = await self._identity()
                async with self._channel(identity, ca_pem) as channel:
                    await self._stream(agent_pb2_grpc.AgentServiceStub(channel), identity)
            except (EnrollmentError, CaFileError) as exc:
                log.warning("cannot enroll: %s", exc)
                if isinstance(exc, EnrollmentError):
                    self._asked_pause = exc.asked_pause
            except grpc.aio.AioRpcError as exc:
                self._on_rpc_error(exc)
            except (TimeoutError, ConnectionError) as exc:
                log.warning("collector %s: %s", self._settings.collector, exc)
            except Exception:
                # Whatever went wrong with this connection, the agent must live on and retry.
                log.exception("connection to %s failed", self._settings.collector)
            finally:
                lasted = loop.time() - self._connected_at if self.connected.is_set() else None
                self.connected.clear()
            delay = backoff.next_delay(lasted, self._asked_pause)
            log.info("reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    def _on_rpc_error(self, exc: grpc.aio.AioRpcError) -> None:
        code = exc.code()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            log.warning("collector refused our credential (%s): enrolling again", exc.details())
            forget_identity(self._settings.state_dir)
            return
        log.warning("collector %s: %s: %s", self._settings.collector, code.name, exc.details())
        self._asked_pause = asked_pause(exc)
        rejected = dict(exc.trailing_metadata() or ()).get(REJECTED_SEQUENCE_HEADER)
        if code == grpc.StatusCode.INVALID_ARGUMENT and rejected and rejected.isdigit():
            # Sending it again would be refused again and block everything behind it.
            dropped = self._outbox.reject(int(rejected))
            log.error("collector refused batch %s (%d results): dropped", rejected, dropped)

    async def _identity(self) -> tuple[Identity, bytes | None]:
        """The stored identity, or a new one from Enroll; and the CA to trust, if any."""
        state_dir, tls = self._settings.state_dir, self._settings.tls
        ca_pem = trusted_ca(state_dir, tls)
        try:
            identity = load_identity(state_dir)
        except RuntimeError as exc:
            log.warning("%s: enrolling again", exc)
            forget_identity(state_dir)
            identity = None
        if identity is not None and ca_pem is not None and not identity.has_certificate:
            log.warning("the collector uses TLS and this identity has no certificate: enrolling")
            identity = None
        if identity is not None:
            return identity, ca_pem
        identity = await enroll(
            collector=self._settings.collector,
            state_dir=state_dir,
            token=self._settings.enrollment_token,
            machine=convert.machine_identity(self._machine),
            ca_pem=ca_pem,
            tls=tls,
            rpc_timeout_s=WELCOME_TIMEOUT_S,
        )
        log.info("enrolled with %s as agent %s", self._settings.collector, identity.agent_id)
        return identity, trusted_ca(state_dir, tls)

    def _channel(self, identity: Identity, ca_pem: bytes | None) -> grpc.aio.Channel:
        """Plaintext without a CA; otherwise TLS pinned to it, with the client certificate."""
        return open_channel(
            self._settings.collector,
            ca_pem,
            identity,
            server_name=identity.server_name or self._settings.tls.server_name,
            options=CHANNEL_OPTIONS,
        )

    async def _stream(
        self,
        stub: agent_pb2_grpc.AgentServiceStub,
        identity: Identity,
    ) -> None:
        call = stub.Connect(
            metadata=(
                ("x-remdiag-agent-id", identity.agent_id),
                ("authorization", f"Bearer {identity.credential}"),
            )
        )
        await call.write(
            convert.hello_message(
                identity.agent_id,
                self._machine,
                last_sequence=self._outbox.last_sequence,
                dropped=self._outbox.dropped,
                policy_version=self._policy_version(),
            )
        )
        first = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT_S)
        if first is grpc.aio.EOF or first.WhichOneof("payload") != "welcome":
            raise ConnectionError("collector did not answer hello with welcome")
        welcome = first.welcome
        self.heartbeat_interval = float(welcome.heartbeat_interval_seconds or 30)
        self._on_policy(welcome.policy)
        # Resend what the collector lacks before anything new, so sequences stay in order.
        resend = self._outbox.resume(welcome.last_acked_sequence)
        for batch in resend:
            await call.write(convert.batch_message(batch))
        self._wake.set()  # results spooled while away drain now, not at the next result
        inventory = await asyncio.to_thread(self._inventory.full)
        await call.write(
            convert.inventory_message(self._outbox.reserve_sequence(), inventory, full=True)
        )
        log.info(
            "connected to %s as %s (resent %d batches)",
            self._settings.collector,
            identity.agent_id,
            len(resend),
        )
        self._connected_at = asyncio.get_running_loop().time()
        self.connected.set()
        reader = asyncio.create_task(self._read_acks(call))
        writer = asyncio.create_task(self._write(call))
        try:
            # Whichever ends first (EOF, error) ends the stream; the other is cancelled.
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            call.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        raise ConnectionError("collector closed the stream")

    async def _read_acks(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            if message.WhichOneof("payload") == "ack":
                self._outbox.ack(message.ack.acked_through)
                self._acked.set()
            elif message.WhichOneof("payload") == "policy":
                self._on_policy(message.policy)
            elif message.WhichOneof("payload") == "diagnostic":
                task = asyncio.create_task(self._diagnose(call, message.diagnostic))
                self._diagnostics.add(task)
                task.add_done_callback(self._diagnostics.discard)

    async def _diagnose(self, call: Any, message: agent_pb2.DiagnosticRequest) -> None:
        """Run one requested diagnostic and answer on the stream. The runner records the
        outcome, so when the stream is gone by then the answer goes with the collector's resend."""
        request_id = message.request_id
        if self._on_diagnostic is None:
            outcome = Outcome(DiagnosticState.REFUSED, {}, "this agent runs no diagnostics", False)
        else:

            async def progress(line: str) -> None:
                await self._send(call, convert.diagnostic_progress(request_id, line))

            outcome = await self._on_diagnostic(convert.diagnostic_request(message), progress)
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self._send(call, convert.diagnostic_outcome(request_id, outcome))

    async def _send(self, call: Any, message: agent_pb2.AgentMessage) -> None:
        async with self._write_lock:
            await call.write(message)

    async def _write(self, call: Any) -> None:
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + self.heartbeat_interval
        next_inventory = loop.time() + self._settings.inventory_interval_seconds
        while True:
            timeout = max(0.0, min(next_heartbeat, next_inventory) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._outbox.pending and self._outbox.pending < self._settings.batch_max_results:
                # Let a few more results join the batch.
                await asyncio.sleep(self._settings.batch_max_delay_seconds)
            await self._flush(call)
            if loop.time() >= next_inventory:
                diff = await asyncio.to_thread(self._inventory.diff)
                if diff is not None:
                    await self._send(
                        call,
                        convert.inventory_message(
                            self._outbox.reserve_sequence(), diff.changed, removed=diff.removed
                        ),
                    )
                next_inventory = loop.time() + self._settings.inventory_interval_seconds
            if loop.time() >= next_heartbeat:
                await self._send(
                    call,
                    convert.heartbeat_message(
                        len(self._outbox), self._outbox.dropped, self._policy_version()
                    ),
                )
                next_heartbeat = loop.time() + self.heartbeat_interval

    async def _flush(self, call: Any) -> None:
        while self._outbox.pending:
            if self._outbox.in_flight >= self._settings.max_unacked_batches:
                self._acked.clear()
                await self._acked.wait()
                continue
            batch = self._outbox.next_batch(self._settings.batch_max_results)
            if batch is not None:
                await self._send(call, convert.batch_message(batch))
