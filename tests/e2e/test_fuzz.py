"""Fault test g: over 10,000 malformed, truncated, oversized and random messages at a live
collector process. It must not crash, must answer each with a gRPC status (never an unhandled
error), and must still be healthy and store a good agent's results afterwards.

    REMDIAG_FUZZ_EXAMPLES=... scales the per-strategy example counts (default gives 10,400).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remdiag.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from tests.support import free_port

SCALE = float(os.environ.get("REMDIAG_FUZZ_EXAMPLES", "1"))
CONNECT = "/remdiag.v1.AgentService/Connect"
ENROLL = "/remdiag.v1.AgentService/Enroll"
TIMEOUT_S = 10.0
# Statuses a malformed message may earn. UNKNOWN would mean an unhandled error in our code.
REFUSALS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
# gRPC itself answers INTERNAL for bytes that do not decode as the request message.
UNDECODABLE = REFUSALS | {grpc.StatusCode.INTERNAL}

seen: Counter[str] = Counter()


class Target:
    def __init__(self, address: str, process: subprocess.Popen[bytes]) -> None:
        self.address = address
        self.process = process
        self.channel = grpc.insecure_channel(address)
        stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        reply = stub.Enroll(
            agent_pb2.EnrollRequest(
                machine=agent_pb2.MachineIdentity(hostname="fuzz-good", machine_id="fuzz-good"),
                agent_version="0.1.0",
            ),
            timeout=TIMEOUT_S,
        )
        self.agent_id = reply.agent_id
        self.metadata = (
            ("x-remdiag-agent-id", reply.agent_id),
            ("authorization", f"Bearer {reply.credential}"),
        )
        self.raw_connect = self.channel.stream_stream(
            CONNECT, request_serializer=None, response_deserializer=None
        )
        self.raw_enroll = self.channel.unary_unary(
            ENROLL, request_serializer=None, response_deserializer=None
        )

    def connect(self, frames: list[bytes], metadata: Any = None) -> grpc.StatusCode:
        """Send raw frames on one Connect stream; the status it ended with."""
        call = self.raw_connect(
            iter(frames),
            metadata=self.metadata if metadata is None else metadata,
            timeout=TIMEOUT_S,
        )
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        code: grpc.StatusCode = call.code()
        return code

    def alive(self) -> None:
        assert self.process.poll() is None, "the collector process died"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    log_file = (data / "collector.log").open("wb")
    # Rates high enough that the fuzzer reaches the decoding and storing paths, not the limiter.
    config = data / "collector.toml"
    config.write_text("[limits]\nmax_messages_per_minute = 1000000\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from collector.cli import main; main()",
            "collector",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--database-url",
            f"sqlite:///{data / 'collector.db'}",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with grpc.insecure_channel(address) as channel:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            break
        except grpc.RpcError:
            assert process.poll() is None and time.monotonic() < deadline, (
                data / "collector.log"
            ).read_text()
            time.sleep(0.1)
    target = Target(address, process)
    yield target
    target.channel.close()
    process.terminate()
    process.wait(timeout=15)
    log_file.close()
    log = (data / "collector.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:20])


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def hello(target: Target) -> bytes:
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(
            agent_id=target.agent_id,
            machine=agent_pb2.MachineIdentity(hostname="fuzz-good", machine_id="fuzz-good"),
        )
    ).SerializeToString()


texts = st.text(max_size=300) | st.sampled_from(["", "\x00", "a" * 5000, "é\x00\ud7ff"])
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70).map(float)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=20,
)


@st.composite
def check_results(draw: st.DrawFn) -> common_pb2.CheckResult:
    result = common_pb2.CheckResult(
        check_id=draw(texts),
        category=draw(st.integers(-3, 9)),  # type: ignore[arg-type]
        status=draw(st.integers(-3, 9)),  # type: ignore[arg-type]
        summary=draw(texts),
        remediation=draw(texts),
    )
    result.observed_at.seconds = draw(st.integers(-(2**40), 2**40))
    result.observed_at.nanos = draw(st.integers(-(10**9), 2 * 10**9))
    for _ in range(draw(st.integers(0, 3))):
        value = result.values.add(name=draw(texts), unit=draw(texts))
        if draw(st.booleans()):
            value.number = draw(numbers)
        else:
            value.text = draw(texts)
    thresholds = draw(st.dictionaries(texts, json_values, max_size=4))
    with contextlib.suppress(ValueError, TypeError):  # what Struct refuses cannot be sent
        result.thresholds.update(thresholds)
    return result


@st.composite
def agent_messages(draw: st.DrawFn) -> agent_pb2.AgentMessage:
    message = agent_pb2.AgentMessage(sequence=draw(st.integers(0, 2**64 - 1)))
    kind = draw(st.sampled_from(["results", "inventory", "heartbeat", "hello", "none"]))
    if kind == "results":
        message.results.results.extend(draw(st.lists(check_results(), max_size=4)))
    elif kind == "inventory":
        message.inventory.full = draw(st.booleans())
        message.inventory.removed_sections.extend(draw(st.lists(texts, max_size=3)))
        with contextlib.suppress(ValueError, TypeError):
            message.inventory.facts.update(draw(st.dictionaries(texts, json_values, max_size=4)))
    elif kind == "heartbeat":
        message.heartbeat.queued = draw(st.integers(0, 2**64 - 1))
        message.heartbeat.dropped = draw(st.integers(0, 2**64 - 1))
    elif kind == "hello":
        message.hello.agent_id = draw(texts)
    return message


@fuzz(4000)
@given(message=agent_messages())
def test_random_messages_after_hello(target: Target, message: agent_pb2.AgentMessage) -> None:
    code = target.connect([hello(target), message.SerializeToString()])
    seen["random message"] += 1
    assert code in REFUSALS, code


@fuzz(2500)
@given(message=agent_messages(), cut=st.floats(0, 1))
def test_truncated_messages(target: Target, message: agent_pb2.AgentMessage, cut: float) -> None:
    frame = message.SerializeToString()
    code = target.connect([hello(target), frame[: int(len(frame) * cut)]])
    seen["truncated message"] += 1
    assert code in UNDECODABLE, code


@fuzz(2000)
@given(frames=st.lists(st.binary(max_size=512), min_size=1, max_size=3))
def test_random_bytes(target: Target, frames: list[bytes]) -> None:
    code = target.connect(frames)
    seen["random bytes"] += 1
    assert code in UNDECODABLE, code


@fuzz(1000)
@given(
    agent_id=texts.filter(lambda s: s.isprintable() and s.isascii()),
    token=texts.filter(lambda s: s.isprintable() and s.isascii()),
    message=agent_messages(),
)
def test_unauthenticated_streams(
    target: Target, agent_id: str, token: str, message: agent_pb2.AgentMessage
) -> None:
    metadata = (("x-remdiag-agent-id", agent_id), ("authorization", f"Bearer {token}"))
    code = target.connect([hello(target), message.SerializeToString()], metadata=metadata)
    seen["unauthenticated"] += 1
    assert code in REFUSALS - {grpc.StatusCode.OK}, code


@fuzz(900)
@given(
    hostname=texts,
    machine_id=texts,
    token=texts,
    csr=st.binary(max_size=300),
    raw=st.booleans(),
    junk=st.binary(max_size=300),
)
def test_random_enrollments(
    target: Target, hostname: str, machine_id: str, token: str, csr: bytes, raw: bool, junk: bytes
) -> None:
    request = agent_pb2.EnrollRequest(
        enrollment_token=token,
        machine=agent_pb2.MachineIdentity(hostname=hostname, machine_id=machine_id),
        csr_pem=csr,
    ).SerializeToString()
    try:
        target.raw_enroll(junk if raw else request, timeout=TIMEOUT_S)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
    seen["enrollment"] += 1
    assert code in UNDECODABLE, code


def test_oversized_messages_are_refused(target: Target) -> None:
    big = agent_pb2.AgentMessage(sequence=1)
    big.results.results.add(check_id="disk.free_space", summary="x" * (5 * 1024 * 1024))
    for frames in ([hello(target), big.SerializeToString()], [b"\x00" * (5 * 1024 * 1024)]):
        assert target.connect(frames) == grpc.StatusCode.RESOURCE_EXHAUSTED
        seen["oversized"] += 1


def test_zz_still_healthy_and_serving_a_good_agent(target: Target) -> None:
    target.alive()
    health = health_pb2_grpc.HealthStub(target.channel).Check(
        health_pb2.HealthCheckRequest(service="remdiag.v1.AgentService"), timeout=TIMEOUT_S
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    # A machine the fuzzer never spoke for: its first batch must be stored and acked.
    stub = agent_pb2_grpc.AgentServiceStub(target.channel)
    fresh = stub.Enroll(
        agent_pb2.EnrollRequest(
            machine=agent_pb2.MachineIdentity(hostname="after-fuzz", machine_id="after-fuzz")
        ),
        timeout=TIMEOUT_S,
    )
    good = agent_pb2.AgentMessage(sequence=1)
    good.results.results.add(
        check_id="disk.free_space",
        category=common_pb2.CATEGORY_HARDWARE,
        status=common_pb2.CHECK_STATUS_OK,
        summary="/ 20% used",
    )
    first = agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(
            agent_id=fresh.agent_id,
            machine=agent_pb2.MachineIdentity(hostname="after-fuzz", machine_id="after-fuzz"),
        )
    )
    replies = list(
        stub.Connect(
            iter([first, good]),
            metadata=(
                ("x-remdiag-agent-id", fresh.agent_id),
                ("authorization", f"Bearer {fresh.credential}"),
            ),
            timeout=TIMEOUT_S,
        )
    )
    assert replies[0].welcome.last_acked_sequence == 0
    assert replies[-1].ack.acked_through == 1
    total = sum(seen.values())
    print(f"\nfuzz: {total} cases against a live collector: {dict(seen)}")
    if SCALE >= 1:
        assert total >= 10_000
