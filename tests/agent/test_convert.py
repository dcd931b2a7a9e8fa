"""agent/convert.py: the policy as the agent reads it, and the version it reports back."""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct

from agent import __version__, convert
from agent.facts.machine import MachineFacts
from agent.plan import PolicyEntry
from remdiag.v1 import common_pb2

MACHINE = MachineFacts("pc-1", "m-1", "Linux", "6.1", "x86_64")


def test_check_policy_with_cron_and_timezone() -> None:
    thresholds = Struct()
    thresholds.update({"max_used_percent_warning": 70})
    policy = common_pb2.Policy(
        version=4,
        checks=[
            common_pb2.CheckPolicy(
                check_id="disk.free_space",
                cron="0 2 * * 0",
                timezone="Europe/Lisbon",
                thresholds=thresholds,
            ),
            common_pb2.CheckPolicy(check_id="memory.pressure", interval_seconds=30),
            common_pb2.CheckPolicy(check_id="cpu.sustained_load", disabled=True),
        ],
    )
    assert convert.policy_entries(policy) == {
        "disk.free_space": PolicyEntry(
            thresholds={"max_used_percent_warning": 70},
            cron="0 2 * * 0",
            timezone="Europe/Lisbon",
        ),
        "memory.pressure": PolicyEntry(interval_seconds=30),
        "cpu.sustained_load": PolicyEntry(disabled=True),
    }


def test_hello_carries_the_policy_version() -> None:
    message = convert.hello_message(
        "agent-1", MACHINE, last_sequence=12, dropped=3, policy_version=9
    )
    assert message.WhichOneof("payload") == "hello"
    hello = message.hello
    assert (hello.agent_id, hello.agent_version, hello.machine.hostname) == (
        "agent-1",
        __version__,
        "pc-1",
    )
    assert (hello.last_sequence, hello.dropped, hello.policy_version) == (12, 3, 9)


def test_heartbeat_carries_the_policy_version() -> None:
    heartbeat = convert.heartbeat_message(5, 2, 9).heartbeat
    assert (heartbeat.queued, heartbeat.dropped, heartbeat.policy_version) == (5, 2, 9)
    assert heartbeat.HasField("sent_at")
    assert convert.heartbeat_message(0).heartbeat.policy_version == 0
