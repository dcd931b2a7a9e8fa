"""A no-op AgentService on 127.0.0.1: the physical limit for benchmarks/ingest.py.

    .venv/bin/python -m benchmarks.noop_collector --port PORT

The same proto service as the collector, on grpc.aio with one event loop: Enroll hands out an
id, Connect answers Hello with Welcome and acknowledges every sequenced message at once,
without storing anything. Messages are decoded (gRPC deserializes them) but not converted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import grpc

from remdiag.v1 import agent_pb2, agent_pb2_grpc

HEARTBEAT_INTERVAL_S = 30
"""What its Welcome tells agents, as the collector's default."""


class NoopAgentService(agent_pb2_grpc.AgentServiceServicer):
    async def Enroll(
        self, request: agent_pb2.EnrollRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.EnrollResponse:
        return agent_pb2.EnrollResponse(agent_id=uuid.uuid4().hex, credential="noop")

    async def Connect(
        self,
        requests: AsyncIterator[agent_pb2.AgentMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[agent_pb2.CollectorMessage]:
        async for message in requests:
            if message.WhichOneof("payload") == "hello":
                yield agent_pb2.CollectorMessage(
                    welcome=agent_pb2.Welcome(
                        agent_id=message.hello.agent_id,
                        heartbeat_interval_seconds=HEARTBEAT_INTERVAL_S,
                    )
                )
            elif message.sequence:
                yield agent_pb2.CollectorMessage(ack=agent_pb2.Ack(acked_through=message.sequence))


async def serve(port: int) -> None:
    server = grpc.aio.server(
        options=[
            # The collector's keepalive settings (collector/server.py): without them agents'
            # pings every 30 s get a GOAWAY (too_many_pings) and hour-long runs reconnect.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
        ]
    )
    agent_pb2_grpc.add_AgentServiceServicer_to_server(NoopAgentService(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(grace=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="127.0.0.1 port to listen on")
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
