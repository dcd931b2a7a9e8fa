"""The support record (collector/report.py): the pure figures on recorded rows, `load` on SQLite
and PostgreSQL, GetReport through real gRPC, and `remdiag report` as table, JSON and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import astuple, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from collector import report
from collector.cli import main
from collector.report import Compliance, DurationStats, ReportTicket, build, duration_stats, load
from collector.server import Collector
from collector.store.models import Ticket
from collector.store.runner import Store
from remdiag.v1 import console_pb2, console_pb2_grpc
from remdiag.vocabulary import Category, Priority, Severity, TicketState, Tier
from tests.collector.conftest import token_of
from tests.collector.factories import DISK, NOW, enrolled

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
WEEK_AGO = NOW - 7 * DAY


def row(opened_at: datetime, **fields: Any) -> ReportTicket:
    values: dict[str, Any] = {
        "agent_id": "agent-1",
        "hostname": "pc-1",
        "check_id": DISK,
        "category": int(Category.HARDWARE),
        "priority": int(Priority.P2),
        "tier": int(Tier.L1),
        "state": int(TicketState.NEW),
        "opened_at": opened_at,
    }
    values.update(fields)
    return ReportTicket(**values)


def week_at_the_desk() -> list[ReportTicket]:
    """Five tickets opened in the week before NOW, two outside it."""
    a, b, c, d, e = (
        NOW - 6 * DAY,  # 2026-11-18 09:00
        NOW - 6 * DAY + HOUR,
        NOW - DAY,  # 2026-11-23 09:00
        NOW - HOUR,  # 2026-11-24 08:00
        NOW - 3 * DAY,  # 2026-11-21 09:00
    )
    return [
        # Answered in 5 min, resolved by a technician in 2 h: both deadlines kept.
        row(
            a,
            state=int(TicketState.RESOLVED),
            acknowledged_at=a + 5 * MINUTE,
            resolved_at=a + 2 * HOUR,
            resolved_by="alice",
            respond_by=a + HOUR,
            resolve_by=a + 8 * HOUR,
        ),
        # The machine recovered in 30 min, before anybody had to answer.
        row(
            b,
            check_id="network.dns",
            category=int(Category.NETWORK),
            priority=int(Priority.P3),
            state=int(TicketState.RESOLVED),
            resolved_at=b + 30 * MINUTE,
            resolved_by="system",
            respond_by=b + 4 * HOUR,
            resolve_by=b + DAY,
        ),
        # Nobody answered, both deadlines long gone.
        row(
            c,
            agent_id="agent-2",
            hostname="pc-2",
            priority=int(Priority.P1),
            tier=int(Tier.L2),
            respond_by=c + 15 * MINUTE,
            resolve_by=c + 4 * HOUR,
            response_breached_at=c + 16 * MINUTE,
            resolution_breached_at=c + 4 * HOUR + MINUTE,
        ),
        # Open, its deadlines still ahead.
        row(
            d,
            agent_id="agent-2",
            hostname="pc-2",
            check_id="offline",
            category=int(Category.NETWORK),
            respond_by=d + 2 * HOUR,
            resolve_by=d + 8 * HOUR,
        ),
        # Answered late, closed late, reopened once on the way.
        row(
            e,
            agent_id="agent-3",
            hostname="pc-3",
            check_id="security.firewall",
            category=int(Category.SECURITY),
            state=int(TicketState.CLOSED),
            acknowledged_at=e + 2 * HOUR,
            closed_at=e + DAY,
            resolved_by="bob",
            respond_by=e + HOUR,
            resolve_by=e + 8 * HOUR,
            reopen_count=1,
        ),
        row(NOW - 8 * DAY, state=int(TicketState.RESOLVED), resolved_by="system"),
        row(NOW, check_id="at.the.end"),  # the period ends before NOW
    ]


def test_every_figure_of_a_week() -> None:
    got = build(week_at_the_desk(), WEEK_AGO, NOW, NOW)

    assert (got.since, got.until) == (WEEK_AGO, NOW)
    assert (got.opened, got.resolved, got.resolution_rate) == (5, 3, 0.6)
    assert (got.auto_resolved, got.resolved_by_technician) == (1, 2)
    assert (got.reopened, got.breached) == (1, 1)
    assert got.by_category == (("hardware", 2), ("network", 2), ("security", 1), ("software", 0))
    assert got.by_check == ((DISK, 2), ("network.dns", 1), ("offline", 1), ("security.firewall", 1))
    assert got.by_machine == (("pc-1", 2), ("pc-2", 2), ("pc-3", 1))
    assert got.by_priority == (("P1", 1), ("P2", 3), ("P3", 1), ("P4", 0))
    assert got.by_tier == (("L1", 4), ("L2", 1), ("L3", 0), ("L4", 0))
    assert got.per_day == (
        ("2026-11-17", 0),
        ("2026-11-18", 2),
        ("2026-11-19", 0),
        ("2026-11-20", 0),
        ("2026-11-21", 1),
        ("2026-11-22", 0),
        ("2026-11-23", 1),
        ("2026-11-24", 1),
    )
    # First responses 5 min and 2 h; p90 = 300 + 0.9 * (7200 - 300).
    assert astuple(got.first_response) == pytest.approx((2, 3750.0, 6510.0))
    # Resolutions 30 min, 2 h, 1 day (the closed one); p90 = 7200 + 0.8 * (86400 - 7200).
    assert astuple(got.resolution) == pytest.approx((3, 7200.0, 70560.0))
    # Response: a met; c (never answered) and e (late) missed; b (auto, early) and d not counted.
    assert got.response_sla == Compliance(met=1, missed=2)
    assert got.response_sla.rate == pytest.approx(1 / 3)
    # Resolution: a and b (auto-resolved in time) met; c (open, past) and e (late) missed.
    assert got.resolution_sla == Compliance(met=2, missed=2)
    assert got.resolution_sla.rate == 0.5


def test_an_empty_period_is_all_zeros() -> None:
    got = build([], WEEK_AGO, NOW, NOW)
    assert (got.opened, got.resolved, got.resolution_rate) == (0, 0, 0.0)
    assert (got.auto_resolved, got.resolved_by_technician, got.reopened, got.breached) == (0,) * 4
    assert got.first_response == got.resolution == DurationStats(0, 0.0, 0.0)
    assert got.response_sla.rate == got.resolution_sla.rate == 0.0
    assert (got.by_check, got.by_machine) == ((), ())
    assert [n for _, n in got.by_category] == [0, 0, 0, 0]
    assert got.by_priority == (("P1", 0), ("P2", 0), ("P3", 0), ("P4", 0))
    assert [day for day, _ in got.per_day][0::7] == ["2026-11-17", "2026-11-24"]
    assert {n for _, n in got.per_day} == {0}


def test_a_period_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError, match="start before it ends"):
        build([], NOW, NOW, NOW)


@pytest.mark.parametrize(
    ("since", "until", "days"),
    [
        (NOW - DAY, NOW, ["2026-11-23", "2026-11-24"]),  # two partial days
        (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC), ["2026-11-23"]),
        (NOW - 30 * MINUTE, NOW, ["2026-11-24"]),
    ],
)
def test_per_day_lists_every_utc_day_the_period_touches(
    since: datetime, until: datetime, days: list[str]
) -> None:
    assert [day for day, _ in build([], since, until, until).per_day] == days


def test_per_day_counts_in_utc_whatever_zone_the_times_carry() -> None:
    opened = datetime(2026, 11, 24, 1, 0, tzinfo=timezone(2 * HOUR))  # 2026-11-23 23:00 UTC
    got = build([row(opened)], NOW - 2 * DAY, NOW, NOW)
    assert dict(got.per_day)["2026-11-23"] == 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], DurationStats(0, 0.0, 0.0)),
        ([42.0], DurationStats(1, 42.0, 42.0)),
        ([10.0, 20.0], DurationStats(2, 15.0, 19.0)),
        ([float(v) for v in range(1, 11)], DurationStats(10, 5.5, 9.1)),
        ([100.0, 1.0, 3.0, 2.0, 4.0], DurationStats(5, 3.0, 61.6)),
    ],
)
def test_median_and_p90_interpolate_between_closest_ranks(
    values: list[float], expected: DurationStats
) -> None:
    got = duration_stats(values)
    assert got.count == expected.count
    assert got.median_seconds == pytest.approx(expected.median_seconds)
    assert got.p90_seconds == pytest.approx(expected.p90_seconds)


def test_a_duration_below_zero_counts_as_zero() -> None:
    skewed = row(WEEK_AGO + HOUR, acknowledged_at=WEEK_AGO + HOUR - MINUTE)
    assert build([skewed], WEEK_AGO, NOW, NOW).first_response == DurationStats(1, 0.0, 0.0)


OPENED = NOW - 2 * HOUR
RESPOND_BY = OPENED + HOUR
RESOLVE_BY = OPENED + 4 * HOUR
RESOLVED = {"state": int(TicketState.RESOLVED)}


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        pytest.param({"acknowledged_at": RESPOND_BY}, NOW, True, id="answered at the deadline"),
        pytest.param({"acknowledged_at": RESPOND_BY + MINUTE}, NOW, False, id="answered late"),
        pytest.param({}, RESPOND_BY, None, id="open, deadline just now"),
        pytest.param({}, RESPOND_BY + MINUTE, False, id="open, never answered, past"),
        pytest.param(
            {**RESOLVED, "resolved_at": RESPOND_BY - MINUTE, "resolved_by": "system"},
            NOW,
            None,
            id="auto-resolved before anybody had to answer",
        ),
        pytest.param(
            {**RESOLVED, "resolved_at": RESPOND_BY + MINUTE, "resolved_by": "system"},
            NOW,
            False,
            id="auto-resolved after the deadline nobody met",
        ),
        pytest.param(
            {"acknowledged_at": OPENED + MINUTE, **RESOLVED, "resolved_at": NOW},
            NOW,
            True,
            id="answered, resolved later",
        ),
        pytest.param(
            {"sla_paused_at": RESPOND_BY - MINUTE}, NOW, None, id="clock paused before deadline"
        ),
        pytest.param(
            {"sla_paused_at": RESPOND_BY + MINUTE}, NOW, False, id="clock paused after deadline"
        ),
    ],
)
def test_response_compliance(fields: dict[str, Any], now: datetime, expected: bool | None) -> None:
    ticket = row(OPENED, respond_by=RESPOND_BY, **fields)
    got = build([ticket], WEEK_AGO, NOW, now).response_sla
    assert got == {None: Compliance(), True: Compliance(1, 0), False: Compliance(0, 1)}[expected]


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        pytest.param({**RESOLVED, "resolved_at": RESOLVE_BY}, NOW, True, id="resolved at it"),
        pytest.param(
            {**RESOLVED, "resolved_at": OPENED + MINUTE, "resolved_by": "system"},
            NOW,
            True,
            id="auto-resolved in time",
        ),
        pytest.param(
            {"state": int(TicketState.CLOSED), "closed_at": RESOLVE_BY + MINUTE},
            NOW,
            False,
            id="closed late",
        ),
        pytest.param({}, RESOLVE_BY, None, id="open, deadline ahead"),
        pytest.param({}, RESOLVE_BY + MINUTE, False, id="open, past"),
        pytest.param(
            {"state": int(TicketState.REOPENED), "resolved_at": OPENED + MINUTE},
            RESOLVE_BY + MINUTE,
            False,
            id="reopened: the old resolution does not count",
        ),
        pytest.param(
            {"sla_paused_at": RESOLVE_BY - MINUTE},
            RESOLVE_BY + HOUR,
            None,
            id="clock paused before deadline",
        ),
    ],
)
def test_resolution_compliance(
    fields: dict[str, Any], now: datetime, expected: bool | None
) -> None:
    ticket = row(OPENED, resolve_by=RESOLVE_BY, **fields)
    got = build([ticket], WEEK_AGO, RESOLVE_BY + 2 * HOUR, now).resolution_sla
    assert got == {None: Compliance(), True: Compliance(1, 0), False: Compliance(0, 1)}[expected]


def test_a_ticket_without_deadlines_is_not_counted() -> None:
    late = row(OPENED, acknowledged_at=NOW, state=int(TicketState.CLOSED), closed_at=NOW)
    got = build([late, row(OPENED, check_id="open")], WEEK_AGO, NOW, NOW + 30 * DAY)
    assert got.response_sla == got.resolution_sla == Compliance()


def test_a_reopened_ticket_is_not_resolved_nor_timed() -> None:
    reopened = row(
        OPENED, state=int(TicketState.REOPENED), resolved_at=OPENED + HOUR, reopen_count=1
    )
    got = build([reopened], WEEK_AGO, NOW, NOW)
    assert (got.opened, got.resolved, got.reopened, got.resolution.count) == (1, 0, 1, 0)


def test_a_ticket_closed_without_a_resolution_is_neither_auto_nor_technician() -> None:
    closed = row(OPENED, state=int(TicketState.CLOSED), closed_at=OPENED + HOUR)
    got = build([closed], WEEK_AGO, NOW, NOW)
    assert (got.resolved, got.auto_resolved, got.resolved_by_technician) == (1, 0, 0)
    assert got.resolution == DurationStats(1, 3600.0, 3600.0)


def test_machines_top_ten_most_first_and_shared_hostnames_told_apart() -> None:
    rows = [
        row(OPENED, agent_id=f"agent-{n:02d}", hostname=f"pc-{n:02d}", check_id=f"c{i}")
        for n in range(12)
        for i in range(n + 1)
    ]
    rows += [row(OPENED, agent_id="twin-a", hostname="pc-twin")] * 20
    rows += [row(OPENED, agent_id="twin-b", hostname="pc-twin")] * 20
    got = build(rows, WEEK_AGO, NOW, NOW).by_machine
    assert len(got) == report.TOP_MACHINES
    assert got[:3] == (("pc-twin (twin-a)", 20), ("pc-twin (twin-b)", 20), ("pc-11", 12))
    assert got[-1] == ("pc-04", 5)


def test_values_outside_the_vocabulary_are_counted_not_dropped() -> None:
    got = build([row(OPENED, priority=0, tier=9)], WEEK_AGO, NOW, NOW)
    assert got.by_priority[-1] == ("unknown (0)", 1)
    assert got.by_tier[-1] == ("unknown (9)", 1)


# The store: `load` on SQLite and PostgreSQL.


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def add_tickets(session: Session, rows: list[ReportTicket]) -> None:
    """Store `rows` as tickets, enrolling one machine per distinct hostname."""
    agents: dict[str, str] = {}
    for r in rows:
        if r.hostname not in agents:
            agents[r.hostname] = enrolled(session, int(r.hostname.split("-")[1])).agent_id
        session.add(
            Ticket(
                agent_id=agents[r.hostname],
                check_id=r.check_id,
                category=r.category,
                severity=int(Severity.CRITICAL),
                state=r.state,
                title=f"{r.check_id} failing on {r.hostname}",
                opened_at=r.opened_at,
                updated_at=r.opened_at,
                resolved_at=r.resolved_at,
                priority=r.priority,
                tier=r.tier,
                respond_by=r.respond_by,
                resolve_by=r.resolve_by,
                response_breached_at=r.response_breached_at,
                resolution_breached_at=r.resolution_breached_at,
                acknowledged_at=r.acknowledged_at,
                closed_at=r.closed_at,
                resolved_by=r.resolved_by,
                reopen_count=r.reopen_count,
                sla_paused_at=r.sla_paused_at,
            )
        )


def test_load_reads_the_tickets_opened_in_the_period(store: Store) -> None:
    recorded = week_at_the_desk()
    store.call(lambda s: add_tickets(s, recorded))

    loaded = store.call(lambda s: load(s, WEEK_AGO, NOW))

    ids = {r.hostname: r.agent_id for r in loaded}
    expected = [replace(r, agent_id=ids[r.hostname]) for r in recorded[:5]]
    assert sorted(loaded, key=lambda r: r.opened_at) == sorted(expected, key=lambda r: r.opened_at)
    assert all(r.opened_at.tzinfo is not None for r in loaded)
    assert build(loaded, WEEK_AGO, NOW, NOW) == build(recorded, WEEK_AGO, NOW, NOW)
    assert store.call(lambda s: load(s, NOW - 30 * DAY, WEEK_AGO))[0].opened_at == NOW - 8 * DAY


def test_load_of_an_empty_store(store: Store) -> None:
    assert store.call(lambda s: load(s, WEEK_AGO, NOW)) == []


# GetReport through real gRPC, and the CLI, on a collector over SQLite and PostgreSQL.


async def recent_tickets(collector: Collector) -> None:
    """Three tickets opened in the last day (the RPC reads the real clock), one before it."""
    base = datetime.now(UTC) - 2 * HOUR
    rows = [
        row(
            base,
            state=int(TicketState.RESOLVED),
            acknowledged_at=base + 10 * MINUTE,
            resolved_at=base + HOUR,
            resolved_by="alice",
            respond_by=base + 15 * MINUTE,
            resolve_by=base + 4 * HOUR,
        ),
        row(
            base + 5 * MINUTE,
            check_id="network.dns",
            category=int(Category.NETWORK),
            state=int(TicketState.RESOLVED),
            resolved_at=base + 20 * MINUTE,
            resolved_by="system",
            respond_by=base + HOUR,
            resolve_by=base + 8 * HOUR,
        ),
        row(
            base,
            hostname="pc-2",
            respond_by=base + 30 * MINUTE,
            resolve_by=base + 8 * HOUR,
            response_breached_at=base + 31 * MINUTE,
        ),
        row(base - 3 * DAY, hostname="pc-3", state=int(TicketState.CLOSED)),
    ]
    await collector.store.run(lambda s: add_tickets(s, rows))


def check_recent(got: console_pb2.Report) -> None:
    assert (got.until.ToDatetime() - got.since.ToDatetime()) == DAY
    assert (got.opened, got.resolved, got.auto_resolved, got.resolved_by_technician) == (3, 2, 1, 1)
    assert got.resolution_rate == pytest.approx(2 / 3)
    assert (got.reopened, got.breached) == (0, 1)
    assert [(c.key, c.count) for c in got.by_machine] == [("pc-1", 2), ("pc-2", 1)]
    assert [(c.key, c.count) for c in got.by_check] == [(DISK, 2), ("network.dns", 1)]
    assert [(c.key, c.count) for c in got.by_category][:2] == [("hardware", 2), ("network", 1)]
    assert [c.key for c in got.by_priority] == ["P1", "P2", "P3", "P4"]
    assert len(got.per_day) == 2 and sum(c.count for c in got.per_day) == 3
    assert (got.first_response.count, got.first_response.median_seconds) == (1, 600.0)
    assert got.resolution.count == 2
    assert got.resolution.median_seconds == pytest.approx(2250.0)
    assert got.resolution.p90_seconds == pytest.approx(3330.0)
    assert got.response_sla_compliance == 0.5  # met by pc-1's disk, missed by pc-2's
    assert got.resolution_sla_compliance == 1.0


@pytest.fixture
def console(channel: grpc.aio.Channel) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(channel)


async def test_get_report(
    collector: Collector, console: console_pb2_grpc.ConsoleServiceStub
) -> None:
    await recent_tickets(collector)
    check_recent(await console.GetReport(console_pb2.GetReportRequest(since_seconds=86400)))


async def test_get_report_of_an_empty_store(console: console_pb2_grpc.ConsoleServiceStub) -> None:
    got = await console.GetReport(console_pb2.GetReportRequest(since_seconds=3600))
    assert (got.opened, got.resolution_rate, got.response_sla_compliance) == (0, 0.0, 0.0)
    assert got.first_response.count == 0 and list(got.by_machine) == []
    assert 1 <= len(got.per_day) <= 2


@pytest.mark.parametrize("since_seconds", [0, 366 * 86400 + 1])
async def test_get_report_refuses_a_period_out_of_range(
    console: console_pb2_grpc.ConsoleServiceStub, since_seconds: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await console.GetReport(console_pb2.GetReportRequest(since_seconds=since_seconds))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "since_seconds must be between 1 and 31622400 (366 days)" in str(raised.value.details())


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(
            main, list(args), env={"COLUMNS": "200", "REMDIAG_TOKEN": token_of("alice")}
        )
    )


async def test_cli_report_as_a_table(collector: Collector) -> None:
    await recent_tickets(collector)
    shown = await invoke("report", "--since", "1d", "--collector", address(collector))
    assert shown.exit_code == 0, shown.output
    for text in (
        "Support record",
        "resolved",
        "2 (67%)",
        "median 10m 00s, p90 10m 00s (1 ticket)",
        "median 37m 30s, p90 55m 30s (2 tickets)",
        "50%",
        "Top machines",
        "pc-1",
        "network.dns",
        "Opened per day (UTC)",
    ):
        assert text in shown.output, text


async def test_cli_report_as_json(collector: Collector) -> None:
    await recent_tickets(collector)
    shown = await invoke("report", "--since", "24h", "--json", "--collector", address(collector))
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.stdout)
    assert (got["opened"], got["resolved"], got["reopened"]) == (3, 2, 0)
    assert got["by_machine"] == [{"key": "pc-1", "count": 2}, {"key": "pc-2", "count": 1}]
    assert got["resolution"]["median_seconds"] == pytest.approx(2250.0)
    assert got["response_sla_compliance"] == 0.5


async def test_cli_report_as_json_keeps_the_zeros(collector: Collector) -> None:
    shown = await invoke("report", "--json", "--collector", address(collector))
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.stdout)
    assert (got["opened"], got["resolution_rate"], got["first_response"]["count"]) == (0, 0, 0)
    assert len(got["per_day"]) in (7, 8)  # --since 7d by default
    assert got["by_priority"][0] == {"key": "P1", "count": 0}


async def test_cli_report_as_csv(collector: Collector) -> None:
    await recent_tickets(collector)
    shown = await invoke("report", "--since", "1d", "--csv", "--collector", address(collector))
    assert shown.exit_code == 0, shown.output
    lines = list(csv.reader(io.StringIO(shown.stdout)))
    assert lines[0] == ["section", "key", "value"]
    assert all(len(line) == 3 for line in lines)
    got = {(section, key): value for section, key, value in lines[1:]}
    assert got[("summary", "opened")] == "3"
    assert got[("summary", "resolution_rate")] == "0.6667"
    assert got[("summary", "response_sla_compliance")] == "0.5000"
    assert got[("resolution", "median_seconds")] == "2250"
    assert got[("by_machine", "pc-1")] == "2"
    assert got[("by_category", "hardware")] == "2"
    assert got[("by_priority", "P4")] == "0"
    assert sum(int(v) for (section, _), v in got.items() if section == "per_day") == 3
    assert datetime.fromisoformat(got[("period", "until")]).tzinfo is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "--json and --csv cannot be used together"),
        (["--since", "soon"], "--since: expected a duration"),
        (["--since", "400d"], "--since: '400d' is out of range"),
    ],
)
async def test_cli_report_usage_errors(args: list[str], message: str) -> None:
    shown = await invoke("report", *args)
    assert shown.exit_code == 2
    assert message in shown.output


def address(collector: Collector) -> str:
    return f"127.0.0.1:{collector.port}"
