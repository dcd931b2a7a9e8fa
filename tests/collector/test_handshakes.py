"""The handshake gate (collector/admission.py): a few handshakes at a time, the rest wait their
turn, beyond the waiting line a Connect is refused at once; a stream without hello is ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from agent.config import TlsSettings
from agent.enroll import EnrollmentError
from agent.enroll import enroll as agent_enroll
from agent.identity import Identity
from agent.pushback import asked_pause
from collector.admission import (
    MAX_PAUSE_S,
    REPORT_EVERY_S,
    UNKNOWN_PACE_PAUSE_S,
    HandshakeGate,
)
from collector.config import CollectorSettings
from collector.limits import LimitSettings
from collector.server import Collector, serve
from collector.store.models import Agent
from remdiag.v1 import agent_pb2, agent_pb2_grpc
from tests.collector.factories import hello, identity
from tests.collector.test_gateway import agent_row, credentials, enroll
from tests.support import eventually

# --- the gate alone ----------------------------------------------------------------------------


async def test_at_most_the_concurrent_turns_run_and_the_next_starts_when_one_is_done() -> None:
    gate = HandshakeGate(concurrent=2, waiting=10)
    started: list[int] = []
    finish = [asyncio.Event() for _ in range(3)]

    async def handshake(n: int) -> None:
        async with gate.turn() as turn:
            started.append(n)
            await finish[n].wait()
            turn.done()

    tasks = [asyncio.create_task(handshake(n)) for n in range(3)]
    await eventually(lambda: asyncio.sleep(0, gate.waiting == 1), "the third to wait")
    assert started == [0, 1]
    finish[1].set()
    await eventually(lambda: asyncio.sleep(0, started == [0, 1, 2]), "the third to start")
    for event in finish:
        event.set()
    await asyncio.gather(*tasks)


async def test_full_only_when_every_slot_is_taken_and_the_line_is_long_enough() -> None:
    gate = HandshakeGate(concurrent=1, waiting=1)
    assert not gate.full()
    holder = gate.turn()
    await holder.__aenter__()
    assert not gate.full()  # one may still wait
    waiter = asyncio.create_task(gate.turn().__aenter__())
    await eventually(lambda: asyncio.sleep(0, gate.waiting == 1), "the waiter")
    assert gate.full()
    waiter.cancel()  # the agent gave up: it leaves the line
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.waiting == 0 and not gate.full()
    await holder.__aexit__(None, None, None)


@dataclass
class ManualClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def _turns(gate: HandshakeGate, clock: ManualClock, count: int, lasting: float) -> None:
    for _ in range(count):
        async with gate.turn():
            clock.now += lasting


async def test_a_refused_agent_is_told_when_the_line_ahead_will_have_cleared() -> None:
    clock = ManualClock()
    gate = HandshakeGate(concurrent=2, waiting=100, clock=clock)
    assert gate.pace() is None
    await _turns(gate, clock, 1, lasting=0.5)
    assert gate.pace() is None  # one turn is not yet a round of them
    await _turns(gate, clock, 4, lasting=0.5)  # two turns at a time: 4 a second
    assert gate.pace() == pytest.approx(4.0)
    async with _line(gate, turns=2, waiting=40):
        assert gate.retry_after_s(clock.now) == pytest.approx(40 / 4.0)
        # Each agent refused after it is given the next turn, not the same moment.
        later = [gate.retry_after_s(clock.now) for _ in range(3)]
        assert later == pytest.approx([10.25, 10.5, 10.75])
        # Those told before are no longer ahead once their time has come.
        assert gate.retry_after_s(clock.now + 10.6) == pytest.approx(40 / 4.0 + 0.25)


async def test_before_a_first_round_of_turns_a_refused_agent_is_told_a_fixed_pause() -> None:
    clock = ManualClock()
    gate = HandshakeGate(concurrent=3, waiting=100, clock=clock)
    await _turns(gate, clock, 2, lasting=30.0)  # a cold start's first turns
    async with _line(gate, turns=3, waiting=100):
        assert gate.pace() is None
        assert gate.retry_after_s(clock.now) == UNKNOWN_PACE_PAUSE_S  # not 30 s and more
    await _turns(gate, clock, 3, lasting=0.1)  # warmed up: 30 a second
    async with _line(gate, turns=3, waiting=30):
        # The agent told 10 s is counted: it is still away, and ahead of the next refused.
        assert gate.retry_after_s(clock.now) == pytest.approx((30 + 1) / 30.0)


async def test_a_refused_agent_is_never_told_to_stay_away_for_minutes() -> None:
    clock = ManualClock()
    gate = HandshakeGate(concurrent=1, waiting=100, clock=clock)
    await _turns(gate, clock, 1, lasting=2.0)  # a cold start: half a handshake a second
    async with _line(gate, turns=1, waiting=100):
        assert gate.retry_after_s(clock.now) == MAX_PAUSE_S  # not 200 s


async def test_the_pace_follows_how_long_turns_mostly_last_not_how_many_ended_lately() -> None:
    clock = ManualClock()
    gate = HandshakeGate(concurrent=32, waiting=100, clock=clock)
    await _turns(gate, clock, 40, lasting=0.4)
    assert gate.pace() == pytest.approx(80.0)
    clock.now += 120.0  # a quiet spell: the collector is no slower for it
    assert gate.pace() == pytest.approx(80.0)
    await _turns(gate, clock, 200, lasting=0.1)  # warmed up: turns are quicker now
    assert gate.pace() == pytest.approx(320.0)
    await _turns(gate, clock, 1, lasting=10.0)  # an agent slow to say hello
    assert gate.pace() == pytest.approx(320.0)


@contextlib.asynccontextmanager
async def _line(gate: HandshakeGate, turns: int, waiting: int) -> AsyncIterator[None]:
    """Every turn taken and `waiting` more in the line, until the block ends."""
    waiters = [asyncio.create_task(_wait_turn(gate)) for _ in range(turns + waiting)]
    try:
        await eventually(lambda: asyncio.sleep(0, gate.waiting == waiting), "the line")
        yield
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _wait_turn(gate: HandshakeGate) -> None:
    async with gate.turn():
        await asyncio.Event().wait()


def test_refusals_are_reported_at_most_once_per_period() -> None:
    gate = HandshakeGate(concurrent=1, waiting=0)
    assert gate.refuse(100.0) == 1
    assert [gate.refuse(100.0 + i) for i in range(1, 4)] == [0, 0, 0]
    assert gate.refuse(100.0 + REPORT_EVERY_S) == 4  # three held back, and this one
    assert gate.refused == 5


# --- on a real collector --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def collector_with(tmp_path: Path, limits: LimitSettings) -> AsyncIterator[Collector]:
    running = await serve(
        CollectorSettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'collector.db'}",
            limits=limits,
        )
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def one_at_a_time(tmp_path: Path) -> AsyncIterator[Collector]:
    """One handshake at a time, nobody waits, and a hello is due within 1 s."""
    limits = LimitSettings(
        max_concurrent_handshakes=1, max_waiting_handshakes=0, hello_timeout_seconds=1.0
    )
    async with collector_with(tmp_path, limits) as running:
        yield running


@dataclass
class TwoAgents:
    stub: agent_pb2_grpc.AgentServiceStub
    first: agent_pb2.EnrollResponse
    second: agent_pb2.EnrollResponse
    slow: grpc.aio.StreamStreamCall
    """The first agent's stream, opened without a hello yet: it holds the only turn."""

    def connect_second(self) -> grpc.aio.StreamStreamCall:
        return self.stub.Connect(metadata=credentials(self.second.agent_id, self.second.credential))

    async def first_says_hello(self) -> agent_pb2.Welcome:
        """The slow agent's hello at last: its Welcome, which frees the turn."""
        await self.slow.write(hello(self.first.agent_id, 1))
        return await welcomed(self.slow)


async def first_holds_the_turn(channel: grpc.aio.Channel, gate: HandshakeGate) -> TwoAgents:
    first, second = await enroll(channel, 1), await enroll(channel, 2)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    slow = stub.Connect(metadata=credentials(first.agent_id, first.credential))
    await slow.wait_for_connection()
    await eventually(lambda: asyncio.sleep(0, gate.saturated()), "the first handshake's turn")
    return TwoAgents(stub, first, second, slow)


async def welcomed(call: grpc.aio.StreamStreamCall) -> agent_pb2.Welcome:
    reply = await call.read()
    assert reply is not grpc.aio.EOF and reply.WhichOneof("payload") == "welcome"
    return reply.welcome


async def test_beyond_the_waiting_line_a_connect_is_refused_unavailable_and_writes_nothing(
    one_at_a_time: Collector,
) -> None:
    gate = one_at_a_time.handshakes
    assert gate is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{one_at_a_time.port}") as channel:
        agents = await first_holds_the_turn(channel, gate)
        refused = agents.connect_second()
        await refused.write(hello(agents.second.agent_id, 2))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await refused.read()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "busy" in (raised.value.details() or "")
        # The two enrollments took turns and finished just now, and nobody waits: the agent is
        # told to come back after the least pause.
        assert asked_pause(raised.value) == 1.0
        assert not (await agent_row(one_at_a_time, agents.second.agent_id)).connected
        assert gate.refused == 1

        # Its hello comes, its Welcome goes: the turn is free and the second agent gets in.
        assert (await agents.first_says_hello()).agent_id == agents.first.agent_id
        again = agents.connect_second()
        await again.write(hello(agents.second.agent_id, 2))
        assert (await welcomed(again)).agent_id == agents.second.agent_id
        assert (await agent_row(one_at_a_time, agents.second.agent_id)).connected
        agents.slow.cancel()
        again.cancel()


async def test_a_stream_without_hello_is_ended_and_frees_its_turn(
    one_at_a_time: Collector,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{one_at_a_time.port}") as channel:
        first, second = await enroll(channel, 1), await enroll(channel, 2)
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        silent = stub.Connect(metadata=credentials(first.agent_id, first.credential))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await silent.read()
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "no hello within 1 s" in (raised.value.details() or "")
        assert not (await agent_row(one_at_a_time, first.agent_id)).connected

        later = stub.Connect(metadata=credentials(second.agent_id, second.credential))
        await later.write(hello(second.agent_id, 2))
        assert (await welcomed(later)).agent_id == second.agent_id
        later.cancel()


async def test_a_connect_waits_for_its_turn_rather_than_being_refused(tmp_path: Path) -> None:
    limits = LimitSettings(max_concurrent_handshakes=1, max_waiting_handshakes=5)
    async with collector_with(tmp_path, limits) as running:
        gate = running.handshakes
        assert gate is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            agents = await first_holds_the_turn(channel, gate)
            waiting = agents.connect_second()
            await waiting.write(hello(agents.second.agent_id, 2))
            await eventually(lambda: asyncio.sleep(0, gate.waiting == 1), "the second to wait")
            assert not (await agent_row(running, agents.second.agent_id)).connected

            assert (await agents.first_says_hello()).agent_id == agents.first.agent_id
            assert (await welcomed(waiting)).agent_id == agents.second.agent_id
            assert gate.refused == 0
            agents.slow.cancel()
            waiting.cancel()


async def test_enrolling_takes_a_turn_too_and_a_refusal_tells_the_agent_when_to_return(
    one_at_a_time: Collector, tmp_path: Path
) -> None:
    gate = one_at_a_time.handshakes
    assert gate is not None
    address = f"127.0.0.1:{one_at_a_time.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        agents = await first_holds_the_turn(channel, gate)

        def third_machine() -> Awaitable[Identity]:
            return agent_enroll(
                collector=address,
                state_dir=tmp_path / "third",
                token="",
                machine=identity(3),
                ca_pem=None,
                tls=TlsSettings(),
            )

        with pytest.raises(EnrollmentError) as refused:
            await third_machine()
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert refused.value.asked_pause == 1.0  # as for a Connect (above)
        machines = await one_at_a_time.store.run(lambda s: s.scalar(select(func.count(Agent.id))))
        assert machines == 2

        await agents.first_says_hello()
        assert (await third_machine()).agent_id
        agents.slow.cancel()
