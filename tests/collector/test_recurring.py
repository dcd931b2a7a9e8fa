"""Recurring preventive tickets: validation and next opening (pure); the job on SQLite and
PostgreSQL with a fixed clock; the RPCs over real gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import desk, recurring, tasks
from collector.lifecycle import Resolve
from collector.server import Collector
from collector.store.models import Agent, RecurringTicket, Ticket, TicketEvent
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.v1 import common_pb2, console_pb2, console_pb2_grpc
from remdiag.vocabulary import Category, Priority, Severity, TicketState, Tier
from tests.collector.conftest import as_
from tests.collector.factories import enrolled

DESK = DeskSettings()
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FINANCE = tasks.target(tags=["finance"])


def spec(**overrides: Any) -> recurring.RecurringSpec:
    given: dict[str, Any] = {
        "name": "backups",
        "title": "Check the backup restores",
        "description": "Restore one file from last night's backup and open it.",
        "every_days": 90,
        "target": FINANCE,
    }
    given.update(overrides)
    return recurring.recurring(**given)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"name": ""}, "name"),
        ({"title": ""}, "title"),
        ({"description": "x" * 2001}, "description"),
        ({"every_days": None}, "exactly one"),
        ({"cron": "0 9 1 * *"}, "exactly one"),
        ({"every_days": 3651}, "every_days"),
        ({"every_days": None, "cron": "0 9 31 2 *"}, "never fires"),
        ({"every_days": None, "cron": "0 9 1 * *", "timezone": "Nowhere/City"}, "IANA"),
        ({"category": 0}, "category"),
        ({"severity": 0}, "severity"),
    ],
)
def test_an_invalid_recurring_ticket_is_refused_with_the_reason(
    overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(tasks.TaskError, match=reason):
        spec(**overrides)


def test_every_n_days_opens_at_once_then_keeps_its_cadence() -> None:
    made = spec()
    assert made.check_id == "preventive:backups"
    assert made.category is Category.SOFTWARE and made.severity is Severity.WARNING
    assert recurring.next_open(made, None, NOW) == NOW
    assert recurring.next_open(made, NOW, NOW) == NOW + timedelta(days=90)
    # A collector down for 200 days opens once on return, then keeps the old rhythm.
    assert recurring.next_open(made, NOW, NOW + timedelta(days=200)) == NOW + timedelta(days=270)


def test_a_cron_schedule_in_a_timezone_across_the_spring_change() -> None:
    made = spec(every_days=None, cron="0 9 * * 1", timezone="Europe/Lisbon")
    before = datetime(2026, 3, 24, tzinfo=UTC)  # Tuesday; clocks went forward on the 29th
    assert recurring.next_open(made, None, datetime(2026, 3, 17, tzinfo=UTC)) == datetime(
        2026, 3, 23, 9, 0, tzinfo=UTC
    )
    assert recurring.next_open(made, None, before) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def machines(store: Store) -> dict[str, str]:
    """pc-1 finance, pc-2 finance + vip, pc-3 lab only; pc-4 finance but revoked."""
    tags = {1: ["finance"], 2: ["finance", "vip"], 3: ["lab"], 4: ["finance"]}

    def work(s: Session) -> dict[str, str]:
        made = {}
        for n, given in tags.items():
            agent_id = enrolled(s, n, NOW).agent_id
            agent = s.get_one(Agent, agent_id)
            agent.tags = given
            if n == 4:
                agent.revoked_at = NOW
            made[f"pc-{n}"] = agent_id
        return made

    return store.call(work)


def open_tickets(store: Store) -> list[Ticket]:
    return store.call(
        lambda s: list(
            s.scalars(
                select(Ticket)
                .where(Ticket.state.not_in((TicketState.RESOLVED, TicketState.CLOSED)))
                .order_by(Ticket.id)
            )
        )
    )


def test_tickets_open_per_machine_placed_by_triage_one_open_at_a_time(store: Store) -> None:
    ids = machines(store)
    row_id = store.call(lambda s: recurring.create(s, spec(), "admin", NOW).id)

    opened = store.call(lambda s: recurring.open_due(s, NOW, DESK))
    assert len(opened) == 2
    tickets = open_tickets(store)
    assert {t.agent_id for t in tickets} == {ids["pc-1"], ids["pc-2"]}
    by_machine = {t.agent_id: t for t in tickets}
    plain, vip = by_machine[ids["pc-1"]], by_machine[ids["pc-2"]]
    assert plain.check_id == "preventive:backups" and plain.title == "Check the backup restores"
    assert plain.priority == Priority.P3 and vip.priority == Priority.P2
    assert plain.tier == Tier.L1 and plain.resolve_by == NOW + timedelta(days=3)
    event = store.call(
        lambda s: s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == plain.id)).one()
    )
    assert event.kind == "opened"
    assert event.message.startswith(
        "recurring preventive ticket backups: Restore one file from last night's backup"
    )
    row = store.call(lambda s: s.get_one(RecurringTicket, row_id))
    assert row.last_opened_at == NOW and row.next_open_at == NOW + timedelta(days=90)

    # Not due yet: nothing. Due again with pc-1's ticket still open: only pc-2 gets a new one.
    assert store.call(lambda s: recurring.open_due(s, NOW + timedelta(days=89), DESK)) == []
    store.call(
        lambda s: desk.update_ticket(
            s,
            vip.id,
            "alice",
            Resolve(note="restored fine"),
            NOW + timedelta(days=1),
            DESK,
        )
    )
    again = store.call(lambda s: recurring.open_due(s, NOW + timedelta(days=90), DESK))
    assert len(again) == 1
    new = store.call(lambda s: s.get_one(Ticket, again[0]))
    assert new.agent_id == ids["pc-2"]
    assert len(open_tickets(store)) == 2


def test_create_list_delete(store: Store) -> None:
    machines(store)
    cron = spec(name="monthly", every_days=None, cron="0 9 1 * *", timezone="Europe/Lisbon")
    made = store.call(lambda s: recurring.create(s, cron, "admin", NOW))
    assert made.next_open_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(tasks.TaskError, match="already exists"):
        store.call(lambda s: recurring.create(s, cron, "admin", NOW))
    with pytest.raises(tasks.TaskError, match="no machine ghost"):
        store.call(
            lambda s: recurring.create(
                s, spec(name="x", target=tasks.target(agent_ids=["ghost"])), "admin", NOW
            )
        )
    assert [r.name for r in store.call(recurring.list_recurring)] == ["monthly"]
    assert store.call(lambda s: recurring.delete(s, made.id))
    assert not store.call(lambda s: recurring.delete(s, made.id))


async def test_recurring_rpcs(collector: Collector, channel: grpc.aio.Channel) -> None:
    stub = console_pb2_grpc.ConsoleServiceStub(channel)
    message = console_pb2.RecurringTicket(
        name="backups",
        title="Check the backup restores",
        every_days=90,
        target=console_pb2.TaskTarget(tags=["finance"]),
        category=common_pb2.CATEGORY_SECURITY,
        severity=common_pb2.SEVERITY_CRITICAL,
    )
    made = await stub.CreateRecurringTicket(
        console_pb2.CreateRecurringTicketRequest(recurring=message)
    )
    assert made.id and made.created_by == "admin" and made.next_open.seconds > 0
    assert made.category == common_pb2.CATEGORY_SECURITY
    listed = await stub.ListRecurringTickets(
        console_pb2.ListRecurringTicketsRequest(), metadata=as_("alice")
    )
    assert [r.name for r in listed.recurring] == ["backups"]

    bad = console_pb2.RecurringTicket(name="x", title="t", target=message.target)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateRecurringTicket(console_pb2.CreateRecurringTicketRequest(recurring=bad))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "exactly one" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.DeleteRecurringTicket(
            console_pb2.DeleteRecurringTicketRequest(recurring_id=made.id), metadata=as_("alice")
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    await stub.DeleteRecurringTicket(console_pb2.DeleteRecurringTicketRequest(recurring_id=made.id))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.DeleteRecurringTicket(
            console_pb2.DeleteRecurringTicketRequest(recurring_id=made.id)
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
