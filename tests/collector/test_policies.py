"""Policies (collector/policies.py): the document's validation and the layering (pure, on
recorded policies), and apply/list/show/delete/effective through real gRPC on SQLite and
PostgreSQL, with pushes to the streams this collector holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select

from collector import fleet, policies
from collector.config import CheckPolicySettings
from collector.policies import PolicyDocument, PolicyError, effective, parse
from collector.server import Collector
from collector.store.models import Agent, Policy
from remdiag.v1 import agent_pb2, agent_pb2_grpc, console_pb2, console_pb2_grpc
from tests.collector.conftest import as_
from tests.collector.factories import enrolled, hello
from tests.collector.test_gateway import credentials, enroll
from tests.support import eventually

DISK = "disk.free_space"
EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "policy.toml"


def doc(name: str, target: dict[str, Any], priority: int = 0, **checks: Any) -> PolicyDocument:
    return parse({"name": name, "target": target, "priority": priority, "checks": checks})


def sources(found: policies.Effective) -> dict[tuple[str, str], tuple[Any, str]]:
    return {(v.check_id, v.field): (v.value, v.source) for v in found.values}


# --- Layering (pure) ----------------------------------------------------------------------------

CONFIG = {
    DISK: CheckPolicySettings(
        interval_seconds=600,
        thresholds={"max_used_percent_warning": 70, "min_free_gib_critical": 2},
    ),
    "memory.pressure": CheckPolicySettings(enabled=False),
}
WARN = "max_used_percent_warning"
CRIT = "max_used_percent_critical"
RECORDED = [
    doc("base", {"all": True}, **{DISK: {"interval_seconds": 300, "thresholds": {WARN: 80}}}),
    doc("fin-low", {"tags": ["finance"]}, 1, **{DISK: {"thresholds": {WARN: 60, CRIT: 90}}}),
    doc(
        "fin-high",
        {"tags": ["finance"]},
        5,
        **{DISK: {"cron": "0 8 * * 1-5", "timezone": "Europe/Lisbon", "thresholds": {WARN: 65}}},
    ),
    doc("laptops", {"tags": ["laptop", "finance"]}, 5, **{"memory.pressure": {"enabled": True}}),
    doc("pc-1 only", {"machines": ["agent-1"]}, -100, **{DISK: {"interval_seconds": 30}}),
]


def test_config_is_the_lowest_layer_and_each_value_says_where_it_came_from() -> None:
    found = effective([], [], "agent-9", CONFIG)
    assert sources(found) == {
        (DISK, "interval_seconds"): (600, "collector config"),
        (DISK, "thresholds.max_used_percent_warning"): (70.0, "collector config"),
        (DISK, "thresholds.min_free_gib_critical"): (2.0, "collector config"),
        ("memory.pressure", "enabled"): (False, "collector config"),
    }
    assert found.policies == ()


def test_all_then_tag_by_priority_then_machine_each_value_from_the_highest_layer() -> None:
    found = effective(RECORDED, ["finance"], "agent-1", CONFIG)
    assert found.policies == ("base", "fin-low", "fin-high", "laptops", "pc-1 only")
    assert sources(found) == {
        # The machine's own policy sets the schedule, whatever its priority: an interval
        # replaces the cron a tag policy set.
        (DISK, "interval_seconds"): (30, "policy pc-1 only (machine)"),
        (DISK, "thresholds.max_used_percent_warning"): (65.0, "policy fin-high (tag finance)"),
        (DISK, "thresholds.max_used_percent_critical"): (90.0, "policy fin-low (tag finance)"),
        (DISK, "thresholds.min_free_gib_critical"): (2.0, "collector config"),
        ("memory.pressure", "enabled"): (True, "policy laptops (tag finance)"),
    }


def test_a_cron_and_its_timezone_are_one_schedule() -> None:
    found = sources(effective(RECORDED, ["finance"], "agent-2", CONFIG))
    assert found[(DISK, "cron")] == ("0 8 * * 1-5", "policy fin-high (tag finance)")
    assert found[(DISK, "timezone")] == ("Europe/Lisbon", "policy fin-high (tag finance)")
    assert (DISK, "interval_seconds") not in found


def test_equal_priority_is_ordered_by_name_and_untagged_machines_skip_tag_policies() -> None:
    a = doc("a", {"tags": ["x"]}, **{DISK: {"interval_seconds": 100}})
    b = doc("b", {"tags": ["x"]}, **{DISK: {"interval_seconds": 200}})
    assert sources(effective([b, a], ["x"], "m", {}))[(DISK, "interval_seconds")] == (
        200,
        "policy b (tag x)",
    )
    plain = effective(RECORDED, ["laptop"], "agent-3", {})
    assert plain.policies == ("base", "laptops")
    assert sources(plain)[(DISK, "thresholds.max_used_percent_warning")] == (
        80.0,
        "policy base (all)",
    )


def test_the_version_follows_the_content_only() -> None:
    one = effective(RECORDED, ["finance"], "agent-1", CONFIG)
    again = effective(list(reversed(RECORDED)), ["finance"], "agent-1", CONFIG)
    other = effective(RECORDED, [], "agent-1", CONFIG)
    assert one.version == again.version == one.message().version
    assert 0 < one.version < 2**63
    assert other.version != one.version


def test_the_message_carries_schedule_thresholds_and_disabled() -> None:
    message = effective(RECORDED, ["finance"], "agent-2", CONFIG).message()
    checks = {c.check_id: c for c in message.checks}
    assert checks[DISK].cron == "0 8 * * 1-5" and checks[DISK].timezone == "Europe/Lisbon"
    assert checks[DISK].interval_seconds == 0
    assert dict(checks[DISK].thresholds)["max_used_percent_warning"] == 65
    assert not checks["memory.pressure"].disabled
    assert effective([], [], "m", CONFIG).message().checks[1].disabled


# --- Validation ---------------------------------------------------------------------------------

GOOD: dict[str, Any] = {"name": "p", "target": {"all": True}}


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({**GOOD, "checks": {"disk.nope": {}}}, "checks.disk.nope: unknown check"),
        (
            {**GOOD, "checks": {DISK: {"thresholds": {WARN: 101}}}},
            "checks.disk.free_space.thresholds.max_used_percent_warning:",
        ),
        (
            {**GOOD, "checks": {DISK: {"thresholds": {CRIT: 50}}}},
            "checks.disk.free_space.thresholds: max_used_percent_warning must not exceed",
        ),
        (
            {**GOOD, "checks": {DISK: {"thresholds": {"no_such_threshold": 1}}}},
            "checks.disk.free_space.thresholds.no_such_threshold:",
        ),
        (
            {**GOOD, "checks": {DISK: {"cron": "0 8 * * *", "interval_seconds": 60}}},
            "checks.disk.free_space: give interval_seconds or cron, not both",
        ),
        (
            {**GOOD, "checks": {DISK: {"cron": "0 8 * * *", "timezone": "Mars/Olympus"}}},
            "checks.disk.free_space: timezone 'Mars/Olympus': not an IANA name",
        ),
        (
            {**GOOD, "checks": {DISK: {"cron": "0 8 * *"}}},
            "checks.disk.free_space: cron '0 8 * *': expected 5 fields",
        ),
        ({**GOOD, "checks": {DISK: {"timezone": "UTC"}}}, "timezone: only with cron"),
        ({"name": "p", "target": {}}, "target: give exactly one of all = true"),
        ({"name": "p", "target": {"all": True, "tags": ["x"]}}, "target: give exactly one"),
        ({"name": "p", "target": {"tags": ["Bad Tag"]}}, "target.tags: Value error, tag"),
        ({**GOOD, "colour": "red"}, "colour: unknown field"),
        ({"target": {"all": True}}, "name: Field required"),
    ],
)
def test_an_invalid_document_is_refused_with_a_reason_naming_the_field(
    spec: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse(spec)
    message = str(refused.value)
    assert "\n" not in message
    assert reason.replace("Value error, ", "") in message


def test_the_example_file_is_valid() -> None:
    found = [parse(d) for d in policies.read_files([EXAMPLE])]
    assert [d.name for d in found] == ["baseline", "finance"]


# --- Through gRPC -------------------------------------------------------------------------------


def struct(spec: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(spec)
    return out


def spec(name: str, target: dict[str, Any], **checks: Any) -> dict[str, Any]:
    return {"name": name, "target": target, "checks": checks}


async def apply(
    stub: console_pb2_grpc.ConsoleServiceStub, *specs: dict[str, Any], dry_run: bool = False
) -> console_pb2.ApplyPolicyResponse:
    reply: console_pb2.ApplyPolicyResponse = await stub.ApplyPolicy(
        console_pb2.ApplyPolicyRequest(specs=[struct(s) for s in specs], dry_run=dry_run)
    )
    return reply


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


async def test_apply_list_show_effective_delete(
    collector: Collector, stub: console_pb2_grpc.ConsoleServiceStub
) -> None:
    agent_id = collector.store.call(lambda s: enrolled(s).agent_id)
    collector.store.call(lambda s: fleet.tag(s, agent_id, ["finance"], []))
    documents = policies.read_files([EXAMPLE])

    dry = await apply(stub, *documents, dry_run=True)
    assert [(c.name, c.change, c.version) for c in dry.changes] == [
        ("baseline", "created", 1),
        ("finance", "created", 1),
    ]
    assert "max_used_percent_warning" in dry.changes[0].diff
    assert dry.machines_affected == 1
    assert not (await stub.ListPolicies(console_pb2.ListPoliciesRequest())).policies

    applied = await apply(stub, *documents)
    assert [c.change for c in applied.changes] == ["created", "created"]
    listed = (await stub.ListPolicies(console_pb2.ListPoliciesRequest())).policies
    assert [(p.name, p.version, p.updated_by) for p in listed] == [
        ("baseline", 1, "admin"),
        ("finance", 1, "admin"),
    ]
    shown = await stub.GetPolicy(console_pb2.GetPolicyRequest(name="finance"))
    assert dict(shown.spec["target"])["tags"][0] == "finance"

    found = await stub.GetEffectivePolicy(console_pb2.GetEffectivePolicyRequest(machine=agent_id))
    values = {(v.check_id, v.field): (json.loads(v.value_json), v.source) for v in found.values}
    assert values[(DISK, "thresholds.max_used_percent_warning")] == (
        75,
        "policy finance (tag finance)",
    )
    assert values[(DISK, "interval_seconds")] == (300, "policy baseline (all)")
    assert values[("battery.wear", "enabled")] == (False, "policy finance (tag finance)")
    assert list(found.policies) == ["baseline", "finance"]
    stored = collector.store.call(lambda s: s.get(Agent, agent_id).policy_version)  # type: ignore[union-attr]
    assert found.version == stored != 0

    # Applying the same again changes nothing; a change bumps that policy's version only.
    again = await apply(stub, *documents)
    assert [(c.change, c.version, c.diff) for c in again.changes] == [
        ("unchanged", 1, ""),
        ("unchanged", 1, ""),
    ]
    assert again.machines_affected == 0
    changed = dict(documents[1], priority=20)
    bumped = await apply(stub, changed)
    assert [(c.name, c.change, c.version) for c in bumped.changes] == [("finance", "changed", 2)]
    assert '+  "priority": 20' in bumped.changes[0].diff

    deleted = await stub.DeletePolicy(console_pb2.DeletePolicyRequest(name="finance"))
    assert deleted.machines_affected == 1
    after = await stub.GetEffectivePolicy(console_pb2.GetEffectivePolicyRequest(machine=agent_id))
    assert list(after.policies) == ["baseline"]
    assert after.version != found.version
    agents = (await stub.ListAgents(console_pb2.ListAgentsRequest())).agents
    assert agents[0].policy_version == after.version
    assert agents[0].running_policy_version == 0  # never reported

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.DeletePolicy(console_pb2.DeletePolicyRequest(name="finance"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetPolicy(console_pb2.GetPolicyRequest(name="finance"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetEffectivePolicy(console_pb2.GetEffectivePolicyRequest(machine="nobody"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_invalid_document_among_valid_ones_changes_nothing(
    collector: Collector, stub: console_pb2_grpc.ConsoleServiceStub
) -> None:
    good = spec("good", {"all": True}, **{DISK: {"interval_seconds": 60}})
    bad = spec("bad", {"all": True}, **{DISK: {"thresholds": {"max_used_percent_warning": -1}}})
    unknown = spec("ghost", {"machines": ["no-such-agent"]})
    for batch in ([good, bad], [good, unknown], [good, good]):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await apply(stub, *batch)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "policy" in (refused.value.details() or "")
    assert collector.store.call(lambda s: list(s.scalars(select(Policy)))) == []


async def test_layers_that_do_not_hold_together_are_refused(
    collector: Collector, stub: console_pb2_grpc.ConsoleServiceStub
) -> None:
    collector.store.call(lambda s: enrolled(s))
    low = spec("low", {"all": True}, **{DISK: {"thresholds": {WARN: 40, CRIT: 50}}})
    await apply(stub, low)
    # Alone it is valid (80 is under the default critical 95); over `low`, the warning level
    # passes low's critical one.
    high = spec("more", {"all": True}, **{DISK: {"thresholds": {WARN: 80}}})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await apply(stub, high)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "thresholds" in (refused.value.details() or "")
    names = collector.store.call(lambda s: list(s.scalars(select(Policy.name))))
    assert names == ["low"]


async def test_a_technician_reads_policies_but_cannot_apply_or_delete(
    collector: Collector, stub: console_pb2_grpc.ConsoleServiceStub
) -> None:
    await apply(stub, spec("base", {"all": True}))
    listed = await stub.ListPolicies(console_pb2.ListPoliciesRequest(), metadata=as_("alice"))
    assert [p.name for p in listed.policies] == ["base"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyPolicy(
            console_pb2.ApplyPolicyRequest(specs=[struct(spec("x", {"all": True}))]),
            metadata=as_("alice"),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.DeletePolicy(console_pb2.DeletePolicyRequest(name="base"), metadata=as_("alice"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    names = collector.store.call(lambda s: list(s.scalars(select(Policy.name))))
    assert names == ["base"]


async def test_changes_reach_a_connected_stream_and_tags_move_machines(
    collector: Collector, channel: grpc.aio.Channel, stub: console_pb2_grpc.ConsoleServiceStub
) -> None:
    response = await enroll(channel)
    agent_id = response.agent_id
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
        metadata=credentials(agent_id, response.credential)
    )
    await call.write(hello(agent_id))
    welcome = (await call.read()).welcome
    assert list(welcome.policy.checks) == [] and welcome.policy.version > 0

    await apply(stub, spec("fin", {"tags": ["finance"]}, **{DISK: {"interval_seconds": 42}}))
    await stub.TagAgent(console_pb2.TagAgentRequest(agent_id=agent_id, add=["finance"]))
    pushed = (await call.read()).policy  # nothing came for the apply: not in its target yet
    assert [(c.check_id, c.interval_seconds) for c in pushed.checks] == [(DISK, 42)]
    await apply(stub, spec("fin", {"tags": ["finance"]}, **{DISK: {"cron": "*/5 * * * 1-5"}}))
    pushed = (await call.read()).policy
    assert [(c.check_id, c.cron, c.timezone) for c in pushed.checks] == [
        (DISK, "*/5 * * * 1-5", "UTC")
    ]
    agents = (await stub.ListAgents(console_pb2.ListAgentsRequest())).agents
    assert agents[0].policy_version == pushed.version

    # The agent reports what it runs; one behind gets its policy again after a heartbeat.
    await call.write(
        agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(policy_version=welcome.policy.version))
    )
    again = (await call.read()).policy
    assert again == pushed
    await call.write(
        agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(policy_version=pushed.version))
    )
    await eventually(
        lambda: running_version(collector, agent_id, pushed.version), "the running version"
    )
    await stub.DeletePolicy(console_pb2.DeletePolicyRequest(name="fin"))
    assert list((await call.read()).policy.checks) == []
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK

    # Not connected: the next Welcome carries the effective policy.
    await apply(stub, spec("fin2", {"tags": ["finance"]}, **{DISK: {"interval_seconds": 77}}))
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
        metadata=credentials(agent_id, response.credential)
    )
    await call.write(hello(agent_id))
    welcome = (await call.read()).welcome
    assert [(c.check_id, c.interval_seconds) for c in welcome.policy.checks] == [(DISK, 77)]
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


async def running_version(collector: Collector, agent_id: str, version: int) -> bool:
    agent = await collector.store.run(lambda s: s.get(Agent, agent_id))
    return agent is not None and agent.running_policy_version == version
