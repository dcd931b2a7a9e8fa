"""The technicians' commands of `remdiag` against a real collector (SQLite and PostgreSQL):
take, assign, start, comment, escalate, resolve, close, reopen, the `tickets` queue and its
filters, `agents tag`, and their errors."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result

from collector import desk
from collector.cli import main
from collector.server import Collector
from remdiag.vocabulary import Category, CheckStatus
from tests.collector.conftest import token_of
from tests.collector.test_console_actions import DNS, Machines, later


@dataclass(frozen=True)
class Desk:
    address: str
    machines: Machines

    async def run(self, *args: str, as_: str = "admin") -> Result:
        """`remdiag ARGS --collector ADDRESS` with the console token of `as_` (one of PEOPLE),
        off the event loop the collector runs on."""
        argv = [*args, "--collector", self.address]
        env = {"COLUMNS": "200", "REMDIAG_TOKEN": token_of(as_)}
        return await asyncio.to_thread(lambda: CliRunner().invoke(main, argv, env=env))

    async def ok(self, *args: str, as_: str = "admin") -> str:
        result = await self.run(*args, as_=as_)
        assert result.exit_code == 0, result.output
        return result.output

    async def json(self, *args: str, as_: str = "admin") -> Any:
        return json.loads(await self.ok(*args, "--json", as_=as_))


@pytest.fixture
def remdiag(collector: Collector) -> Desk:
    return Desk(f"127.0.0.1:{collector.port}", Machines(collector))


def failed(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


async def test_work_a_ticket_from_the_terminal(remdiag: Desk) -> None:
    ticket = await remdiag.machines.fail(await remdiag.machines.enroll(1), 0)
    tid = str(ticket)

    # Each acts with their own console token: the token's name is the actor.
    steps = [
        ("alice", ("take", tid), f"ticket {tid}: acknowledged, L1, alice: taken by alice"),
        (
            "alice",
            ("assign", tid, "bob"),
            f"ticket {tid}: acknowledged, L1, bob: assigned to bob by alice",
        ),
        ("bob", ("start", tid), f"ticket {tid}: in progress, L1, bob: work in progress"),
        (
            "carol",
            ("comment", tid, "ordered a disk"),
            f"ticket {tid}: in progress, L1, bob: ordered a disk",
        ),
        (
            "bob",
            ("escalate", tid, "--note", "on-site visit"),
            f"ticket {tid}: acknowledged, L2, unassigned: escalated by bob: L1 -> L2; "
            "unassigned from bob: on-site visit",
        ),
        (
            "dave",
            ("resolve", tid, "--note", "disk replaced"),
            f"ticket {tid}: resolved, L2, unassigned: resolved by dave: disk replaced",
        ),
        ("erin", ("close", tid), f"ticket {tid}: closed, L2, unassigned: closed by erin"),
        (
            "frank",
            ("reopen", tid, "--note", "slow again"),
            f"ticket {tid}: reopened, L2, unassigned: reopened by frank: slow again",
        ),
    ]
    for who, args, line in steps:
        assert (await remdiag.ok(*args, as_=who)).startswith(line), args

    shown = await remdiag.json("ticket", tid)
    assert [(e["actor"], e["kind"]) for e in shown["events"]] == [
        ("system", "opened"),
        ("alice", "taken"),
        ("alice", "assigned"),
        ("bob", "started"),
        ("carol", "comment"),
        ("bob", "escalated"),
        ("dave", "resolved"),
        ("erin", "closed"),
        ("frank", "reopened"),
    ]
    assert shown["ticket"]["reopen_count"] == 1


async def test_an_action_prints_json(remdiag: Desk) -> None:
    ticket = await remdiag.machines.fail(await remdiag.machines.enroll(1), 0)
    detail = await remdiag.json("take", str(ticket), as_="alice")
    assert detail["ticket"]["id"] == str(ticket)
    assert detail["ticket"]["state"] == "TICKET_STATE_ACKNOWLEDGED"
    assert detail["ticket"]["assignee"] == "alice"
    assert detail["events"][-1]["actor"] == "alice"


async def test_refused_actions_are_clear_errors(remdiag: Desk) -> None:
    ticket = await remdiag.machines.fail(await remdiag.machines.enroll(1), 0)
    tid = str(ticket)

    failed(await remdiag.run("take", "999", as_="alice"), 1, "remdiag: no ticket 999")
    failed(
        await remdiag.run("reopen", tid, as_="alice"),
        1,
        f"remdiag: ticket {tid} is new: only a resolved or closed ticket can be reopened",
    )
    failed(
        await remdiag.run("resolve", tid, "--note", " ", as_="alice"),
        1,
        "remdiag: resolution note is empty",
    )
    await remdiag.ok("close", tid, as_="alice")
    failed(await remdiag.run("close", tid, as_="alice"), 1, f"ticket {tid} is closed already")
    failed(
        await remdiag.run("escalate", tid, as_="alice"),
        1,
        f"ticket {tid} is closed: reopen it first",
    )


async def test_usage_errors(remdiag: Desk) -> None:
    failed(await remdiag.run("resolve", "1", as_="alice"), 2, "--note")
    failed(await remdiag.run("take", "abc"), 2, "abc")
    failed(await remdiag.run("take", "0"), 2, "0")
    failed(await remdiag.run("assign", "1"), 2, "ASSIGNEE")
    failed(await remdiag.run("tickets", "--state", "sleeping"), 2, "sleeping")
    failed(await remdiag.run("tickets", "--priority", "p9"), 2, "p9")
    failed(await remdiag.run("tickets", "--sort", "oldest"), 2, "oldest")
    failed(
        await remdiag.run("tickets", "--mine", "--assignee", "bob", as_="bob"),
        2,
        "give --mine or --assignee, not both",
    )


# --- the queue ----------------------------------------------------------------------------------


@pytest.fixture
async def queue(remdiag: Desk, collector: Collector) -> dict[str, str]:
    """disk: P2 on pc-1, new; dns: P3 network on pc-1, taken by bob; vip: P1 on pc-2 (tagged
    vip), new, missed its first response and went up to L2."""
    machines = remdiag.machines
    pc1, pc2 = await machines.enroll(1), await machines.enroll(2)
    await remdiag.ok("agents", "tag", pc2, "+vip")
    disk = await machines.fail(pc1, 0)
    dns = await machines.fail(pc1, 3, CheckStatus.WARNING, DNS, Category.NETWORK)
    vip = await machines.fail(pc2, 6)
    await remdiag.ok("take", str(dns), as_="bob")
    assert await collector.store.run(lambda s: desk.sweep(s, later(30))) == [vip]
    return {str(disk): "disk", str(dns): "dns", str(vip): "vip", "pc2": pc2}


async def names(remdiag: Desk, queue: dict[str, str], *args: str) -> list[str]:
    return [queue[t["id"]] for t in await remdiag.json("tickets", *args)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["vip", "disk", "dns"]),
        (("--sort", "urgency"), ["vip", "disk", "dns"]),
        (("--sort", "newest"), ["vip", "dns", "disk"]),
        (("--limit", "1"), ["vip"]),
        (("--open",), ["vip", "disk", "dns"]),
        (("--state", "new"), ["vip", "disk"]),
        (("--state", "ACKNOWLEDGED", "--state", "closed"), ["dns"]),
        (("--state", "in_progress"), []),
        (("--priority", "p1", "--priority", "p3"), ["vip", "dns"]),
        (("--tier", "l2"), ["vip"]),
        (("--tier", "l1", "--sort", "newest"), ["dns", "disk"]),
        (("--category", "network"), ["dns"]),
        (("--category", "hardware"), ["vip", "disk"]),
        (("--assignee", "bob"), ["dns"]),
        (("--unassigned",), ["vip", "disk"]),
        (("--breached",), ["vip"]),
        (("--unassigned", "--category", "hardware", "--tier", "l1"), ["disk"]),
    ],
)
async def test_tickets_filters_and_sort(
    remdiag: Desk, queue: dict[str, str], args: tuple[str, ...], expected: list[str]
) -> None:
    assert await names(remdiag, queue, *args) == expected


@pytest.mark.parametrize(("who", "expected"), [("bob", ["dns"]), ("alice", []), ("admin", [])])
async def test_tickets_mine_are_the_callers(
    remdiag: Desk, queue: dict[str, str], who: str, expected: list[str]
) -> None:
    """--mine: assigned to the holder of the console token."""
    found = await remdiag.json("tickets", "--mine", as_=who)
    assert [queue[t["id"]] for t in found] == expected


async def test_tickets_of_one_machine(remdiag: Desk, queue: dict[str, str]) -> None:
    assert await names(remdiag, queue, "--machine", queue["pc2"]) == ["vip"]


async def test_tickets_table(remdiag: Desk, queue: dict[str, str]) -> None:
    output = await remdiag.ok("tickets", "--breached")
    assert "pc-2" in output and "disk.free_space" in output
    assert "pc-1" not in output


# --- agents tag ---------------------------------------------------------------------------------


async def test_agents_tag(remdiag: Desk) -> None:
    agent_id = await remdiag.machines.enroll(1)
    assert (await remdiag.ok("agents", "tag", agent_id, "+vip", "+lab")).strip() == (
        f"pc-1 ({agent_id}): lab vip"
    )
    assert (await remdiag.ok("agents", "tag", agent_id, "+vip", "-lab")).strip() == (
        f"pc-1 ({agent_id}): vip"
    )
    assert (await remdiag.ok("agents", "tag", agent_id, "-vip")).strip() == (
        f"pc-1 ({agent_id}): no tags"
    )
    tagged = await remdiag.json("agents", "tag", agent_id, "+server", "+finance")
    assert tagged["tags"] == ["finance", "server"]
    listed = await remdiag.json("agents")
    assert [a["tags"] for a in listed] == [["finance", "server"]]


async def test_agents_tag_errors(remdiag: Desk) -> None:
    agent_id = await remdiag.machines.enroll(1)
    failed(
        await remdiag.run("agents", "tag", agent_id, "vip"),
        2,
        "each change is +tag or -tag, got 'vip'",
    )
    failed(await remdiag.run("agents", "tag", agent_id, "+vip", "+", "lab"), 2, "'+ lab'")
    failed(await remdiag.run("agents", "tag", agent_id), 2, "CHANGES")
    failed(await remdiag.run("agents", "tag", agent_id, "+VIP"), 1, "remdiag: tag 'VIP': use")
    failed(
        await remdiag.run("agents", "tag", "no-such-agent", "+vip"), 1, "no agent 'no-such-agent'"
    )
    # Nothing was changed (JSON leaves an empty list out).
    assert [a.get("tags", []) for a in await remdiag.json("agents")] == [[]]


async def test_text_with_brackets_prints_as_it_is(remdiag: Desk) -> None:
    """A comment (or summary, or host name) is data: "[/tmp]" is not a closing markup tag."""
    tid = str(await remdiag.machines.fail(await remdiag.machines.enroll(1), 0))
    await remdiag.ok("comment", tid, "cleaned [/tmp] and [bold] nothing else", as_="alice")
    shown = await remdiag.ok("ticket", tid)
    assert "cleaned [/tmp] and [bold] nothing else" in shown
