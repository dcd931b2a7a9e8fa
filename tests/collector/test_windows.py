"""collector/windows.py: active, next start and scope on recorded times (across DST), validation,
the store functions on SQLite and PostgreSQL, the console RPCs over real gRPC, and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from click.testing import CliRunner, Result

from collector import windows
from collector.cli import main
from collector.server import Collector
from collector.store.runner import Store
from collector.windows import WindowError, WindowSpec, covers, is_active, next_start, window
from remdiag.v1 import console_pb2, console_pb2_grpc
from tests.collector.conftest import token_of
from tests.collector.factories import NOW, enrolled

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def recurring(cron: str, timezone: str, duration: timedelta, **scope: Any) -> WindowSpec:
    scope = scope or {"all_machines": True}
    return window(name="nightly", cron=cron, timezone=timezone, duration=duration, **scope)


# --- One-off windows ----------------------------------------------------------------------------

ONE_OFF = window(name="upgrade", starts_at=utc(2026, 11, 24, 10), duration=HOUR, all_machines=True)


@pytest.mark.parametrize(
    ("now", "active", "upcoming"),
    [
        (utc(2026, 11, 24, 9, 59), False, utc(2026, 11, 24, 10)),
        (utc(2026, 11, 24, 10), True, None),
        (utc(2026, 11, 24, 10, 59, 59), True, None),
        (utc(2026, 11, 24, 11), False, None),
    ],
)
def test_one_off_before_during_after(
    now: datetime, active: bool, upcoming: datetime | None
) -> None:
    assert is_active(ONE_OFF, now) is active
    assert next_start(ONE_OFF, now) == upcoming


def test_one_off_start_in_another_zone_is_kept_in_utc() -> None:
    lisbon_summer = datetime(2026, 7, 1, 3, 0, tzinfo=ZoneInfo("Europe/Lisbon"))
    spec = window(name="w", starts_at=lisbon_summer, duration=HOUR, tags=["lab"])
    assert spec.starts_at == utc(2026, 7, 1, 2)
    assert spec.starts_at is not None and spec.starts_at.tzinfo is UTC


# --- Recurring windows across daylight-saving changes -------------------------------------------

# Europe/Lisbon: 2026-03-29 01:00 WET -> 02:00 WEST; 2026-10-25 02:00 WEST -> 01:00 WET.
NIGHTLY_LISBON = recurring("0 2 * * *", "Europe/Lisbon", 2 * HOUR)


@pytest.mark.parametrize(
    ("now", "active"),
    [
        # The day before spring forward: 02:00 WET is 02:00 UTC.
        (utc(2026, 3, 28, 1, 59), False),
        (utc(2026, 3, 28, 2), True),
        (utc(2026, 3, 28, 3, 59), True),
        (utc(2026, 3, 28, 4), False),
        # Spring forward: 02:00 WEST is 01:00 UTC; the window lasts two real hours.
        (utc(2026, 3, 29, 0, 59), False),
        (utc(2026, 3, 29, 1), True),
        (utc(2026, 3, 29, 2, 59), True),
        (utc(2026, 3, 29, 3), False),
        # The day before fall back: 02:00 WEST is 01:00 UTC.
        (utc(2026, 10, 24, 1), True),
        (utc(2026, 10, 24, 3), False),
        # Fall back: the clocks pass 01:00-02:00 twice, then 02:00 WET is 02:00 UTC.
        (utc(2026, 10, 25, 1, 30), False),
        (utc(2026, 10, 25, 2), True),
        (utc(2026, 10, 25, 3, 59), True),
        (utc(2026, 10, 25, 4), False),
    ],
)
def test_nightly_in_lisbon_across_both_changes(now: datetime, active: bool) -> None:
    assert is_active(NIGHTLY_LISBON, now) is active


def test_next_start_in_lisbon_follows_the_offset() -> None:
    assert next_start(NIGHTLY_LISBON, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    # At its start, the next start is the following one.
    assert next_start(NIGHTLY_LISBON, utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 1)
    assert next_start(NIGHTLY_LISBON, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 2)


def test_duration_is_elapsed_time_across_spring_forward() -> None:
    # 00:00 WET to three hours later: 03:00 UTC, which the clocks show as 04:00 WEST.
    spec = recurring("0 0 * * *", "Europe/Lisbon", 3 * HOUR)
    assert is_active(spec, utc(2026, 3, 29, 2, 59))
    assert not is_active(spec, utc(2026, 3, 29, 3))


def test_start_in_the_skipped_hour_keeps_the_old_offset() -> None:
    # 01:30 does not exist in Lisbon on 2026-03-29: read as 01:30 WET, i.e. 02:30 WEST.
    spec = recurring("30 1 * * *", "Europe/Lisbon", HOUR)
    assert not is_active(spec, utc(2026, 3, 29, 1, 15))
    assert is_active(spec, utc(2026, 3, 29, 1, 30))
    assert is_active(spec, utc(2026, 3, 29, 2, 29))
    assert not is_active(spec, utc(2026, 3, 29, 2, 30))
    # Asked after the jump (02:15 WEST), the start is still ahead in real time.
    assert next_start(spec, utc(2026, 3, 29, 1, 15)) == utc(2026, 3, 29, 1, 30)
    assert next_start(spec, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 30, 0, 30)


def test_start_in_the_repeated_hour_opens_at_both_occurrences() -> None:
    spec = recurring("30 1 * * *", "Europe/Lisbon", 30 * MINUTE)
    assert is_active(spec, utc(2026, 10, 25, 0, 45))  # 01:45 WEST
    assert not is_active(spec, utc(2026, 10, 25, 1, 15))  # 01:15 WET
    assert is_active(spec, utc(2026, 10, 25, 1, 45))  # 01:45 WET
    assert not is_active(spec, utc(2026, 10, 25, 2))


# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
SUNDAYS_NEW_YORK = recurring("0 2 * * 0", "America/New_York", 2 * HOUR)


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (utc(2026, 3, 1, 7), True),  # Sunday 02:00 EST
        (utc(2026, 3, 1, 6, 30), False),
        (utc(2026, 3, 2, 7, 30), False),  # a Monday: crontab's 0 is Sunday
        (utc(2026, 3, 8, 7, 30), True),  # 02:00 is skipped: read as EST, 03:00 EDT
        (utc(2026, 3, 8, 9), False),
        (utc(2026, 3, 15, 6, 30), True),  # Sunday 02:00 EDT
        (utc(2026, 3, 15, 8), False),
        (utc(2026, 11, 1, 6, 30), False),  # fall back: 01:30 EST
        (utc(2026, 11, 1, 7), True),  # 02:00 EST
    ],
)
def test_sunday_nights_in_new_york(now: datetime, active: bool) -> None:
    assert is_active(SUNDAYS_NEW_YORK, now) is active


def test_next_start_in_new_york_is_a_sunday() -> None:
    assert next_start(SUNDAYS_NEW_YORK, utc(2026, 3, 11, 12)) == utc(2026, 3, 15, 6)


@pytest.mark.parametrize(
    ("timezone", "day"),
    [
        ("Europe/Lisbon", utc(2026, 3, 29)),
        ("Europe/Lisbon", utc(2026, 10, 25)),
        ("America/New_York", utc(2026, 3, 8)),
        ("America/New_York", utc(2026, 11, 1)),
        ("Australia/Lord_Howe", utc(2026, 10, 3, 12)),  # a half-hour jump
    ],
)
@pytest.mark.parametrize("cron", ["30 1 * * *", "0 2 * * *", "*/20 1-3 * * *", "45 1,2 * * *"])
def test_agrees_with_a_walk_from_days_before(timezone: str, day: datetime, cron: str) -> None:
    """Asked at any minute, is_active and next_start give what the fire times that APScheduler
    lists from two days earlier say, however close to the change the question is asked."""
    fires = list(windows._walk(cron, timezone, day - 2 * 24 * HOUR, day + 3 * 24 * HOUR))
    for duration in (15 * MINUTE, HOUR, 3 * HOUR):
        spec = recurring(cron, timezone, duration)
        for step in range(0, 30 * 60, 10):
            now = day - 6 * HOUR + step * MINUTE
            expected = any(now - duration < fire <= now for fire in fires)
            assert is_active(spec, now) is expected, (duration, now)
            assert next_start(spec, now) == min(f for f in fires if f > now), now


@pytest.mark.parametrize(
    ("cron", "weekday"),
    [("0 2 * * 7", 6), ("0 2 * * sun", 6), ("0 2 * * 1", 0), ("0 2 * * fri-sun", 4)],
)
def test_crontab_weekdays(cron: str, weekday: int) -> None:
    start = next_start(recurring(cron, "UTC", HOUR), utc(2026, 3, 1, 12))  # a Sunday noon
    assert start is not None and start.weekday() == weekday


def test_overlapping_occurrences_keep_it_active() -> None:
    spec = recurring("*/10 * * * *", "UTC", 30 * MINUTE)
    assert all(is_active(spec, NOW + timedelta(minutes=m)) for m in range(0, 120, 7))


# --- Scope --------------------------------------------------------------------------------------


def test_covers_by_tag_machine_or_all() -> None:
    by_tag = window(name="w", starts_at=NOW, duration=HOUR, tags=["lab", "kiosk"])
    by_machine = window(name="w", starts_at=NOW, duration=HOUR, agent_ids=["a-1"])
    everyone = window(name="w", starts_at=NOW, duration=HOUR, all_machines=True)
    assert covers(by_tag, "a-9", ["vip", "kiosk"])
    assert not covers(by_tag, "a-1", ["vip"])
    assert covers(by_machine, "a-1", [])
    assert not covers(by_machine, "a-2", ["lab"])
    assert covers(everyone, "a-3", [])


# --- Validation ---------------------------------------------------------------------------------

GOOD: dict[str, Any] = {"name": "w", "duration": HOUR, "all_machines": True}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "exactly one of"),
        ({"starts_at": NOW, "cron": "0 2 * * *"}, "exactly one of"),
        ({"cron": "0 2 * *"}, "expected 5 fields"),
        ({"cron": "61 2 * * *"}, "cron '61 2 * * *'"),
        ({"cron": "0 2 * * 8"}, "weekday '8'"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "not an IANA name"),
        ({"cron": "0 2 * * *", "timezone": ""}, "timezone"),
        ({"starts_at": datetime(2026, 11, 24, 10)}, "needs a timezone"),
        ({"starts_at": NOW, "duration": timedelta(0)}, "between 1 minute and 31 days"),
        ({"starts_at": NOW, "duration": timedelta(days=31, minutes=1)}, "between 1 minute"),
        ({"starts_at": NOW, "duration": timedelta(seconds=90)}, "whole number of minutes"),
        ({"starts_at": NOW, "all_machines": False}, "at least one tag or machine"),
        ({"starts_at": NOW, "tags": ["lab"]}, "not both"),
        ({"starts_at": NOW, "name": "  "}, "name"),
        ({"starts_at": NOW, "name": "x" * 129}, "name"),
        ({"starts_at": NOW, "all_machines": False, "tags": ["a b"]}, "tag 'a b'"),
        ({"starts_at": NOW, "all_machines": False, "tags": ["Lab"]}, "lowercase"),
        ({"cron": "0 2 * * 5-1"}, "goes backwards"),
        ({"starts_at": NOW, "all_machines": False, "tags": [f"t{i}" for i in range(33)]}, "32"),
        ({"starts_at": NOW, "all_machines": False, "agent_ids": ["x" * 37]}, "machine"),
    ],
)
def test_invalid_windows_say_why(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(WindowError, match=None) as raised:
        window(**{**GOOD, **changes})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_valid_window_is_normalised() -> None:
    spec = window(
        name="  patch night ",
        cron=" 0 2 * * 0 ",
        timezone="Europe/Lisbon",
        duration=2 * HOUR,
        tags=["lab", "lab", "kiosk"],
    )
    assert (spec.name, spec.cron, spec.tags) == ("patch night", "0 2 * * 0", {"lab", "kiosk"})
    assert spec.starts_at is None and not spec.all_machines


# --- Store --------------------------------------------------------------------------------------


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def test_create_list_delete(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s, 1).agent_id)
    one_off = window(name="upgrade", starts_at=NOW, duration=HOUR, agent_ids=[agent_id])
    nightly = recurring("0 2 * * *", "Europe/Lisbon", 2 * HOUR, tags=["lab"])
    first = store.call(lambda s: windows.create(s, one_off, "alice", NOW).id)
    second = store.call(lambda s: windows.create(s, nightly, "bob", NOW).id)

    rows = store.call(windows.list_windows)
    assert [r.id for r in rows] == [first, second]
    assert [WindowSpec.from_row(r) for r in rows] == [one_off, nightly]
    assert (rows[0].created_by, rows[0].created_at, rows[1].duration_minutes) == ("alice", NOW, 120)

    assert store.call(lambda s: windows.delete(s, first)) is True
    assert store.call(lambda s: windows.delete(s, first)) is False
    assert [r.id for r in store.call(windows.list_windows)] == [second]


def test_create_refuses_an_unknown_machine(store: Store) -> None:
    spec = window(name="w", starts_at=NOW, duration=HOUR, agent_ids=["no-such-agent"])
    with pytest.raises(WindowError, match="no machine no-such-agent"):
        store.call(lambda s: windows.create(s, spec, "alice", NOW))
    assert store.call(windows.list_windows) == []


def test_in_maintenance_finds_the_oldest_active_covering_window(store: Store) -> None:
    first = store.call(lambda s: enrolled(s, 1).agent_id)
    second = store.call(lambda s: enrolled(s, 2).agent_id)
    later = window(name="later", starts_at=NOW + HOUR, duration=HOUR, all_machines=True)
    lab = window(name="lab", starts_at=NOW, duration=HOUR, tags=["lab"])
    pc1 = window(name="pc-1", starts_at=NOW, duration=HOUR, agent_ids=[first])
    for spec in (later, lab, pc1):
        store.call(lambda s, w=spec: windows.create(s, w, "alice", NOW))

    def covering(agent_id: str, tags: list[str], now: datetime = NOW) -> str | None:
        row = store.call(lambda s: windows.in_maintenance(s, agent_id, tags, now))
        return None if row is None else row.name

    assert covering(first, []) == "pc-1"
    assert covering(first, ["lab"]) == "lab"
    assert covering(second, ["lab"]) == "lab"
    assert covering(second, ["vip"]) is None
    assert covering(second, [], NOW + HOUR) == "later"
    assert covering(second, [], NOW + 2 * HOUR) is None

    found = store.call(
        lambda s: windows.machines_in_maintenance(s, [(first, []), (second, ["vip"])], NOW)
    )
    assert {k: v.name for k, v in found.items()} == {first: "pc-1"}
    everyone = store.call(lambda s: windows.agents_in_maintenance(s, NOW + HOUR))
    assert {k: v.name for k, v in everyone.items()} == {first: "later", second: "later"}
    assert store.call(lambda s: windows.agents_in_maintenance(s, NOW - HOUR)) == {}


# --- ConsoleService over real gRPC --------------------------------------------------------------


@pytest.fixture
def console(channel: grpc.aio.Channel) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


def nightly_message(**changes: Any) -> console_pb2.MaintenanceWindow:
    fields: dict[str, Any] = {
        "name": "patch night",
        "cron": "0 2 * * 0",
        "timezone": "Europe/Lisbon",
        "duration_minutes": 180,
        "tags": ["lab"],
    }
    return console_pb2.MaintenanceWindow(**{**fields, **changes})


async def test_rpcs_create_list_delete(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    agent_id = await collector.store.run(lambda s: enrolled(s, 1).agent_id)
    # The request's actor is ignored: the window's author is the caller's token (admin).
    made = await console.CreateWindow(
        console_pb2.CreateWindowRequest(window=nightly_message(), actor="alice")
    )
    assert (made.name, made.cron, made.created_by, list(made.tags)) == (
        "patch night",
        "0 2 * * 0",
        "admin",
        ["lab"],
    )
    start = made.next_start.ToDatetime(tzinfo=UTC)
    assert start > datetime.now(UTC) and start.astimezone(ZoneInfo("Europe/Lisbon")).hour == 2
    assert start.astimezone(ZoneInfo("Europe/Lisbon")).weekday() == 6  # Sunday

    running = console_pb2.MaintenanceWindow(
        name="now", duration_minutes=60, agent_ids=[agent_id], cron=""
    )
    running.starts_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    second = await console.CreateWindow(console_pb2.CreateWindowRequest(window=running, actor="b"))
    assert second.active and not second.HasField("next_start")

    listed = (await console.ListWindows(console_pb2.ListWindowsRequest())).windows
    assert [(w.id, w.active) for w in listed] == [(made.id, made.active), (second.id, True)]

    await console.DeleteWindow(console_pb2.DeleteWindowRequest(window_id=made.id))
    listed = (await console.ListWindows(console_pb2.ListWindowsRequest())).windows
    assert [w.id for w in listed] == [second.id]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron": "0 2 * *"}, "expected 5 fields"),
        ({"timezone": "Mars/Olympus"}, "not an IANA name"),
        ({"duration_minutes": 0}, "between 1 minute and 31 days"),
        ({"tags": [], "all_machines": False}, "at least one tag or machine"),
        ({"agent_ids": ["no-such-agent"]}, "no machine no-such-agent"),
    ],
)
async def test_create_window_refuses_bad_input(
    console: console_pb2_grpc.ConsoleServiceStub, changes: dict[str, Any], message: str
) -> None:
    request = console_pb2.CreateWindowRequest(window=nightly_message(**changes), actor="alice")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await console.CreateWindow(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (raised.value.details() or "")
    assert not (await console.ListWindows(console_pb2.ListWindowsRequest())).windows


@pytest.mark.parametrize("window_id", [999, 2**64 - 1])
async def test_delete_unknown_window_is_not_found(
    console: console_pb2_grpc.ConsoleServiceStub, window_id: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await console.DeleteWindow(console_pb2.DeleteWindowRequest(window_id=window_id))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"no window {window_id}" in (raised.value.details() or "")


# --- CLI ----------------------------------------------------------------------------------------


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main, list(args), env={"COLUMNS": "200", "REMDIAG_TOKEN": token_of("admin")}
        )
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_cli_create_list_delete(collector: Collector) -> None:
    address = f"127.0.0.1:{collector.port}"
    created = await invoke(
        "windows", "create", "--collector", address, "--json",
        "--name", "patch night", "--cron", "0 2 * * 0", "--timezone", "Europe/Lisbon",
        "--duration", "3h", "--tag", "lab", "--tag", "kiosk",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    made = json.loads(created.output)
    assert (made["created_by"], made["duration_minutes"], sorted(made["tags"])) == (
        "admin",
        180,
        ["kiosk", "lab"],
    )

    one_off = await invoke(
        "windows", "create", "--collector", address, "--name", "upgrade",
        "--start", "2030-07-01T03:00", "--timezone", "Europe/Lisbon", "--duration", "2h", "--all",
    )  # fmt: skip
    assert one_off.exit_code == 0, one_off.output
    assert "2030-07-01 02:00 UTC" in one_off.output  # 03:00 summer time in Lisbon

    listed = await invoke("windows", "--collector", address)
    assert listed.exit_code == 0, listed.output
    assert "patch night" in listed.output and "0 2 * * 0 (Europe/Lisbon)" in listed.output
    assert "tags kiosk, lab" in listed.output and "all machines" in listed.output

    deleted = await invoke("windows", "delete", str(made["id"]), "--collector", address)
    assert deleted.exit_code == 0, deleted.output
    listed = await invoke("windows", "--collector", address, "--json")
    assert [w["name"] for w in json.loads(listed.output)] == ["upgrade"]

    again = await invoke("windows", "delete", str(made["id"]), "--collector", address)
    assert again.exit_code == 1
    assert f"remdiag: no window {made['id']}" in again.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cron", "0 2 * * mon-xyz"], 1, "weekday 'xyz'"),
        (["--cron", "99 2 * * *"], 1, "cron '99 2 * * *'"),
        (["--cron", "0 2 * * *", "--timezone", "Nowhere/City"], 1, "'Nowhere/City'"),
        (["--start", "tomorrow"], 2, "expected ISO 8601"),
        (["--start", "2030-01-01T00:00", "--cron", "0 2 * * *"], 2, "exactly one of"),
        (["--cron", "0 2 * * *", "--duration", "soon"], 2, "--duration"),
        (["--cron", "0 2 * * *", "--duration", "90s"], 2, "whole number of minutes"),
    ],
)
async def test_cli_bad_window_is_a_clear_error(
    collector: Collector, args: list[str], code: int, message: str
) -> None:
    base = ["windows", "create", "--collector", f"127.0.0.1:{collector.port}", "--name", "w"]
    rest = ["--all", *args] if "--duration" in args else ["--all", "--duration", "1h", *args]
    result = await invoke(*base, *rest)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "remdiag: " in result.output and "Traceback" not in result.output
