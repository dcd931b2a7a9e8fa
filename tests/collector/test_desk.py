"""collector/desk.py on SQLite and PostgreSQL: technicians' actions on stored tickets, with their
events, reopening, and the queue's filters and sort orders. Times are fixed (`at(n)`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import desk
from collector.desk import Sort, TicketDetail, TicketFilter
from collector.engine import TicketRules
from collector.ingest import IngestOutcome, ingest_batch
from collector.lifecycle import (
    Action,
    ActionError,
    Assign,
    Close,
    Comment,
    Escalate,
    Reopen,
    Resolve,
    Start,
    Take,
)
from collector.store.models import CheckState, Ticket, TicketEvent
from collector.store.runner import Store
from collector.triage import DeskSettings, SlaSettings
from remdiag.vocabulary import Category, CheckStatus, Priority, Severity, TicketState, Tier
from tests.collector.factories import DISK, at, counts, enrolled, result

RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2)
SETTINGS = DeskSettings()
DNS = "network.dns"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


class Machine:
    """One enrolled agent whose results go through ingest, as a real agent sends them."""

    def __init__(self, store: Store, n: int = 1) -> None:
        self.store = store
        self.agent_id = store.call(lambda s: enrolled(s, n)).agent_id
        self.sequence = 0

    def send(self, status: CheckStatus, minute: int, check_id: str = DISK) -> IngestOutcome:
        self.sequence += 1
        sequence, now = self.sequence, at(minute)
        return self.store.call(
            lambda s: ingest_batch(
                s, self.agent_id, sequence, [result(status, check_id, now)], RULES, now
            )
        )

    def open_ticket(self, minute: int = 1, check_id: str = DISK) -> int:
        """Three critical results in a row from `minute` on: a P2 ticket at L1."""
        outcomes = [self.send(CheckStatus.CRITICAL, minute + i, check_id) for i in range(3)]
        assert outcomes[-1].opened, "the third failure opens a ticket"
        return outcomes[-1].opened[0]

    def check_state(self, check_id: str = DISK) -> CheckState:
        state = self.store.call(lambda s: s.get(CheckState, (self.agent_id, check_id)))
        assert state is not None
        return state


def act(
    store: Store,
    ticket_id: int,
    actor: str,
    action: Action,
    minute: int,
    settings: DeskSettings = SETTINGS,
) -> TicketDetail:
    detail = store.call(
        lambda s: desk.update_ticket(s, ticket_id, actor, action, at(minute), settings)
    )
    assert detail is not None
    return detail


def stored(store: Store, ticket_id: int) -> Ticket:
    ticket = store.call(lambda s: s.get(Ticket, ticket_id))
    assert ticket is not None
    return ticket


def timeline(store: Store, ticket_id: int) -> list[tuple[str, str]]:
    query = select(TicketEvent.actor, TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
    return store.call(lambda s: [(a, k) for a, k in s.execute(query.order_by(TicketEvent.id))])


# --- actions ----------------------------------------------------------------------------------


def test_take_acknowledges_once_and_assigns(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()

    taken = act(store, ticket_id, "alice", Take(), 10)
    t = taken.row.ticket
    assert (t.state, t.assignee, t.acknowledged_at) == (TicketState.ACKNOWLEDGED, "alice", at(10))
    assert t.updated_at == at(10)
    assert (taken.events[-1].actor, taken.events[-1].kind) == ("alice", "taken")
    assert taken.events[-1].message == "taken by alice"
    assert taken.events[-1].at == at(10)

    # Handing it on later is no new first response.
    again = act(store, ticket_id, "carol", Assign("bob"), 20).row.ticket
    assert (again.state, again.assignee, again.acknowledged_at) == (
        TicketState.ACKNOWLEDGED,
        "bob",
        at(10),
    )
    assert stored(store, ticket_id).acknowledged_at == at(10)


def test_start_puts_the_ticket_in_progress(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    t = act(store, ticket_id, "alice", Start(), 10).row.ticket
    assert (t.state, t.assignee, t.acknowledged_at) == (TicketState.IN_PROGRESS, "alice", at(10))
    assert timeline(store, ticket_id)[-1] == ("alice", "started")


def test_a_comment_on_a_new_ticket_is_its_first_response(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    first = act(store, ticket_id, "alice", Comment("looking at it"), 10)
    t = first.row.ticket
    # Somebody answered: the first-response clock stops (it runs only while NEW or REOPENED).
    assert (t.state, t.acknowledged_at, t.assignee) == (TicketState.ACKNOWLEDGED, at(10), None)
    assert (first.events[-1].kind, first.events[-1].message) == ("comment", "looking at it")

    act(store, ticket_id, "bob", Start(), 20)
    later = act(store, ticket_id, "alice", Comment("still full"), 30).row.ticket
    assert (later.state, later.assignee, later.acknowledged_at) == (
        TicketState.IN_PROGRESS,
        "bob",
        at(10),
    )


def test_a_comment_on_a_finished_ticket_changes_nothing_but_the_timeline(store: Store) -> None:
    machine = Machine(store)
    resolved = machine.open_ticket()
    act(store, resolved, "alice", Resolve("fixed"), 10)
    act(store, resolved, "bob", Comment("the user confirms"), 20)
    t = stored(store, resolved)
    assert (t.state, t.resolved_at, t.resolved_by, t.closed_at, t.acknowledged_at) == (
        TicketState.RESOLVED,
        at(10),
        "alice",
        None,
        at(10),
    )

    closed = machine.open_ticket(minute=30, check_id=DNS)
    act(store, closed, "alice", Close("duplicate"), 40)
    detail = act(store, closed, "bob", Comment("see the other ticket"), 50)
    t = detail.row.ticket
    # The comment is recorded when it was made; the ticket was closed when it was closed.
    assert (t.state, t.closed_at, t.acknowledged_at) == (TicketState.CLOSED, at(40), at(40))
    assert (detail.events[-1].actor, detail.events[-1].at) == ("bob", at(50))
    assert stored(store, closed).closed_at == at(40)


def test_escalate_goes_up_a_tier_and_unassigns(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    act(store, ticket_id, "alice", Take(), 10)

    escalated = act(store, ticket_id, "alice", Escalate("needs a new disk"), 20)
    t = escalated.row.ticket
    assert (t.tier, t.assignee, t.state) == (Tier.L2, None, TicketState.ACKNOWLEDGED)
    last = escalated.events[-1]
    assert (last.actor, last.kind, last.at) == ("alice", "escalated", at(20))
    assert last.message == "escalated by alice: L1 -> L2; unassigned from alice: needs a new disk"


def test_escalating_a_new_ticket_leaves_its_response_clock_running(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    t = act(store, ticket_id, "alice", Escalate(), 10).row.ticket
    assert (t.state, t.tier, t.acknowledged_at) == (TicketState.NEW, Tier.L2, None)
    # Opened at at(3), P2: first response due within an hour; still missed, from L2 to L3.
    assert store.call(lambda s: desk.sweep(s, at(3) + timedelta(minutes=61))) == [ticket_id]
    assert stored(store, ticket_id).tier == Tier.L3


def test_escalate_stops_at_l4(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    for minute in (10, 11, 12):
        act(store, ticket_id, "alice", Escalate(), minute)
    assert stored(store, ticket_id).tier == Tier.L4
    before = counts_of(store)
    with pytest.raises(ActionError, match="already at L4"):
        act(store, ticket_id, "alice", Escalate(), 13)
    assert counts_of(store) == before


def test_a_person_resolving_a_still_failing_check_sees_the_ticket_reopen(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket()  # at(1)..at(3)

    resolved = act(store, ticket_id, "alice", Resolve("  cleaned the temp folder  "), 10)
    t = resolved.row.ticket
    assert (t.state, t.resolved_by, t.resolved_at) == (TicketState.RESOLVED, "alice", at(10))
    assert t.acknowledged_at == at(10)  # resolving a new ticket was its first response
    assert resolved.events[-1].message == "resolved by alice: cleaned the temp folder"

    # The disk is still full: within the reopen window the very next failure reopens the same
    # ticket (the run of failures never ended), with fresh deadlines and no resolution.
    outcome = machine.send(CheckStatus.CRITICAL, 20)
    assert outcome.opened == (ticket_id,)
    t = stored(store, ticket_id)
    assert (t.state, t.reopen_count, t.resolved_at, t.resolved_by) == (
        TicketState.REOPENED,
        1,
        None,
        None,
    )
    assert (t.respond_by, t.resolve_by) == (at(20 + 60), at(20 + 8 * 60))
    assert t.acknowledged_at == at(10)
    assert timeline(store, ticket_id)[-2:] == [("alice", "resolved"), ("system", "reopened")]
    assert machine.check_state().open_ticket_id == ticket_id
    assert len(store.call(lambda s: list(s.scalars(select(Ticket.id))))) == 1


def test_resolved_and_the_machine_agrees(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket()
    act(store, ticket_id, "alice", Resolve("freed 20 GiB"), 10)
    assert machine.send(CheckStatus.OK, 11).resolved == ()  # nothing left to resolve
    assert machine.send(CheckStatus.OK, 12).resolved == ()
    t = stored(store, ticket_id)
    assert (t.state, t.resolved_by, t.resolved_at) == (TicketState.RESOLVED, "alice", at(10))


def test_close_is_final_for_the_rules(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket()

    closed = act(store, ticket_id, "alice", Close("known issue, replacing the PC"), 10)
    t = closed.row.ticket
    assert (t.state, t.closed_at, t.resolved_at) == (TicketState.CLOSED, at(10), None)
    assert closed.events[-1].message == "closed by alice: known issue, replacing the PC"

    # A closed ticket is not reopened by the rules: the next failure opens a new one.
    outcome = machine.send(CheckStatus.CRITICAL, 20)
    assert len(outcome.opened) == 1 and outcome.opened[0] != ticket_id
    assert stored(store, ticket_id).state == TicketState.CLOSED


def test_close_of_a_resolved_ticket_keeps_its_resolution(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    act(store, ticket_id, "alice", Resolve("fixed"), 10)
    t = act(store, ticket_id, "bob", Close(), 20).row.ticket
    assert (t.state, t.resolved_by, t.resolved_at, t.closed_at) == (
        TicketState.CLOSED,
        "alice",
        at(10),
        at(20),
    )
    with pytest.raises(ActionError, match="is closed already"):
        act(store, ticket_id, "bob", Close(), 30)


def test_reopen_gives_fresh_deadlines_from_the_settings(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket()  # P2, opened at at(3)
    # Both deadlines missed: L1 -> L2 -> L3.
    assert store.call(lambda s: desk.sweep(s, at(3 + 9 * 60))) == [ticket_id]
    act(store, ticket_id, "alice", Resolve("replaced the disk"), 600)
    machine.send(CheckStatus.OK, 601)
    machine.send(CheckStatus.OK, 602)

    sla = dict(SETTINGS.sla) | {"P2": SlaSettings(respond_minutes=30, resolve_minutes=120)}
    reopened = act(
        store, ticket_id, "bob", Reopen("user says it is slow again"), 700, DeskSettings(sla=sla)
    )
    t = reopened.row.ticket
    assert (t.state, t.reopen_count, t.tier) == (TicketState.REOPENED, 1, Tier.L3)
    assert (t.respond_by, t.resolve_by) == (at(730), at(820))
    assert (t.response_breached_at, t.resolution_breached_at) == (None, None)
    assert (t.resolved_at, t.resolved_by, t.closed_at) == (None, None, None)
    assert (reopened.events[-1].actor, reopened.events[-1].kind) == ("bob", "reopened")
    assert reopened.events[-1].message == "reopened by bob: user says it is slow again"
    # The check's rules follow the ticket again.
    state = machine.check_state()
    assert (state.open_ticket_id, state.last_ticket_id) == (ticket_id, ticket_id)

    # A failure now counts on the reopened ticket; no second ticket opens.
    for minute in (701, 702, 703):
        assert machine.send(CheckStatus.CRITICAL, minute).opened == ()
    assert stored(store, ticket_id).failure_count > 3
    # And two passes resolve it again, as for any open ticket.
    machine.send(CheckStatus.OK, 710)
    assert machine.send(CheckStatus.OK, 711).resolved == (ticket_id,)
    assert stored(store, ticket_id).resolved_by == "system"


def test_reopen_of_a_closed_ticket_clears_its_closing(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    act(store, ticket_id, "alice", Close(), 10)
    t = act(store, ticket_id, "alice", Reopen(), 20).row.ticket
    assert (t.state, t.closed_at, t.reopen_count) == (TicketState.REOPENED, None, 1)
    assert (t.respond_by, t.resolve_by) == (at(20 + 60), at(20 + 8 * 60))
    act(store, ticket_id, "alice", Close(), 30)
    assert act(store, ticket_id, "alice", Reopen(), 40).row.ticket.reopen_count == 2


def test_reopen_is_refused_while_another_ticket_is_open_for_the_check(store: Store) -> None:
    machine = Machine(store)
    first = machine.open_ticket()
    act(store, first, "alice", Close("wrong machine"), 10)
    second = machine.send(CheckStatus.CRITICAL, 20).opened[0]

    before = counts_of(store)
    with pytest.raises(ActionError) as refused:
        act(store, first, "alice", Reopen(), 30)
    assert str(refused.value) == (
        f"ticket {second} is already open for {DISK} on this machine: work that one"
    )
    assert counts_of(store) == before
    assert stored(store, first).state == TicketState.CLOSED
    assert machine.check_state().open_ticket_id == second

    # Once the other one is done, the first may be reopened.
    act(store, second, "alice", Resolve("duplicate"), 40)
    assert act(store, first, "alice", Reopen(), 50).row.ticket.state == TicketState.REOPENED
    assert machine.check_state().open_ticket_id == first


def test_another_machines_open_ticket_does_not_block_a_reopen(store: Store) -> None:
    first = Machine(store, 1).open_ticket()
    Machine(store, 2).open_ticket()
    act(store, first, "alice", Close(), 10)
    assert act(store, first, "alice", Reopen(), 20).row.ticket.state == TicketState.REOPENED


def test_an_unknown_ticket_is_none(store: Store) -> None:
    Machine(store).open_ticket()
    before = counts_of(store)
    assert (
        store.call(lambda s: desk.update_ticket(s, 999, "alice", Take(), at(5), SETTINGS)) is None
    )
    assert counts_of(store) == before


def test_a_refused_action_writes_nothing(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    before = counts_of(store)
    with pytest.raises(ActionError, match="resolution note is empty"):
        act(store, ticket_id, "alice", Resolve(" "), 10)
    with pytest.raises(ActionError, match="actor is empty"):
        act(store, ticket_id, "", Take(), 10)
    assert counts_of(store) == before
    t = stored(store, ticket_id)
    assert (t.state, t.acknowledged_at, t.assignee) == (TicketState.NEW, None, None)


def test_every_action_leaves_an_event_with_its_actor(store: Store) -> None:
    ticket_id = Machine(store).open_ticket()
    steps: list[tuple[str, Action, str]] = [
        ("ann", Take(), "taken"),
        ("ben", Assign("cat"), "assigned"),
        ("cat", Start(), "started"),
        ("dan", Comment("ordered a disk"), "comment"),
        ("eve", Escalate(), "escalated"),
        ("fay", Resolve("disk replaced"), "resolved"),
        ("gus", Close(), "closed"),
        ("hal", Reopen(), "reopened"),
    ]
    for minute, (actor, action, _) in enumerate(steps, start=10):
        act(store, ticket_id, actor, action, minute)
    detail = store.call(lambda s: desk.get_ticket(s, ticket_id))
    assert detail is not None
    assert [(e.actor, e.kind) for e in detail.events] == [
        ("system", "opened"),
        *[(actor, kind) for actor, _, kind in steps],
    ]
    assert [e.at for e in detail.events[1:]] == [at(m) for m in range(10, 10 + len(steps))]


def counts_of(store: Store) -> dict[str, int]:
    return store.call(counts)


# --- the queue ----------------------------------------------------------------------------------


def add_ticket(
    session: Session,
    agent_id: str,
    check_id: str,
    *,
    state: TicketState = TicketState.NEW,
    priority: Priority = Priority.P3,
    tier: Tier = Tier.L1,
    category: Category = Category.HARDWARE,
    assignee: str | None = None,
    opened: int = 0,
    respond_by: int | None = 240,
    resolve_by: int | None = 4320,
    breached: str = "",
) -> int:
    """A stored ticket as the queue sees it; minutes are counted from at(0)."""
    ticket = Ticket(
        agent_id=agent_id,
        check_id=check_id,
        category=int(category),
        severity=int(Severity.CRITICAL),
        state=int(state),
        title=f"{check_id} failing",
        opened_at=at(opened),
        updated_at=at(opened),
        failure_count=3,
        priority=int(priority),
        tier=int(tier),
        respond_by=at(respond_by) if respond_by is not None else None,
        resolve_by=at(resolve_by) if resolve_by is not None else None,
        assignee=assignee,
        response_breached_at=at(opened + 1) if breached == "response" else None,
        resolution_breached_at=at(opened + 1) if breached == "resolution" else None,
    )
    session.add(ticket)
    session.flush()
    return ticket.id


def listed(store: Store, **where: object) -> list[int]:
    rows = store.call(lambda s: desk.list_tickets(s, TicketFilter(**where)))  # type: ignore[arg-type]
    return [r.ticket.id for r in rows]


@pytest.fixture
def queue(store: Store) -> dict[str, int]:
    """Six tickets on two machines, each different in one way."""
    pc1 = Machine(store, 1).agent_id
    pc2 = Machine(store, 2).agent_id

    def build(s: Session) -> dict[str, int]:
        return {
            "new": add_ticket(s, pc1, "a", opened=1),
            "vip": add_ticket(s, pc1, "b", opened=2, priority=Priority.P1, assignee="alice"),
            "l2": add_ticket(
                s, pc1, "c", opened=3, tier=Tier.L2, state=TicketState.IN_PROGRESS, assignee="bob"
            ),
            "net": add_ticket(
                s, pc2, "a", opened=4, category=Category.NETWORK, breached="response"
            ),
            "late": add_ticket(
                s,
                pc2,
                "b",
                opened=5,
                state=TicketState.ACKNOWLEDGED,
                assignee="alice",
                breached="resolution",
            ),
            "done": add_ticket(s, pc2, "c", opened=6, state=TicketState.RESOLVED),
        }

    return store.call(build)


EVERY_TICKET = {"new", "vip", "l2", "net", "late", "done"}


def names(queue: dict[str, int], ids: list[int]) -> set[str]:
    by_id = {v: k for k, v in queue.items()}
    return {by_id[i] for i in ids}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({}, EVERY_TICKET),
        ({"open_only": True}, {"new", "vip", "l2", "net", "late"}),
        ({"states": frozenset({TicketState.NEW})}, {"new", "vip", "net"}),
        (
            {"states": frozenset({TicketState.IN_PROGRESS, TicketState.RESOLVED})},
            {"l2", "done"},
        ),
        ({"priorities": frozenset({Priority.P1})}, {"vip"}),
        (
            {"priorities": frozenset({Priority.P1, Priority.P3})},
            EVERY_TICKET,
        ),
        ({"priorities": frozenset({Priority.P4})}, set()),
        ({"tiers": frozenset({Tier.L2})}, {"l2"}),
        ({"categories": frozenset({Category.NETWORK})}, {"net"}),
        (
            {"categories": frozenset({Category.NETWORK, Category.HARDWARE})},
            EVERY_TICKET,
        ),
        ({"assignee": "alice"}, {"vip", "late"}),
        ({"assignee": "nobody"}, set()),
        ({"unassigned_only": True}, {"new", "net", "done"}),
        ({"breached_only": True}, {"net", "late"}),
        # Filters narrow each other.
        ({"assignee": "alice", "breached_only": True}, {"late"}),
        ({"open_only": True, "unassigned_only": True}, {"new", "net"}),
        (
            {"states": frozenset({TicketState.NEW}), "priorities": frozenset({Priority.P3})},
            {"new", "net"},
        ),
    ],
)
def test_filters(
    store: Store, queue: dict[str, int], where: dict[str, object], expected: set[str]
) -> None:
    assert names(queue, listed(store, **where)) == expected


def test_filter_by_machine(store: Store, queue: dict[str, int]) -> None:
    pc2 = store.call(lambda s: desk.get_ticket(s, queue["net"]))
    assert pc2 is not None
    assert pc2.row.hostname == "pc-2"
    ids = listed(store, agent_id=pc2.row.ticket.agent_id)
    assert names(queue, ids) == {"net", "late", "done"}
    assert listed(store, agent_id="no-such-agent") == []


def test_newest_first(store: Store, queue: dict[str, int]) -> None:
    order = ["done", "late", "net", "l2", "vip", "new"]
    assert listed(store, sort=Sort.NEWEST) == [queue[n] for n in order]
    assert listed(store, sort=Sort.NEWEST, limit=2) == [queue["done"], queue["late"]]


def test_urgency_is_the_next_deadline_then_priority(store: Store) -> None:
    pc1 = Machine(store, 1).agent_id

    def build(s: Session) -> dict[str, int]:
        new, ack, progress, reopened = (
            TicketState.NEW,
            TicketState.ACKNOWLEDGED,
            TicketState.IN_PROGRESS,
            TicketState.REOPENED,
        )
        return {
            # Waiting for a first response: the response deadline counts, if earlier.
            "new, respond at 30": add_ticket(s, pc1, "a", state=new, respond_by=30, resolve_by=300),
            # Acknowledged: only the resolution deadline is left.
            "ack, resolve at 200": add_ticket(
                s, pc1, "b", state=ack, respond_by=10, resolve_by=200
            ),
            "reopened, resolve at 50": add_ticket(
                s, pc1, "c", state=reopened, respond_by=100, resolve_by=50
            ),
            "in progress, resolve at 20": add_ticket(
                s, pc1, "d", state=progress, respond_by=5, resolve_by=20
            ),
            # A missed deadline is the earliest of all.
            "missed at -60": add_ticket(
                s, pc1, "e", state=progress, respond_by=None, resolve_by=-60
            ),
            # Same deadline: the higher priority first.
            "P1 at 200": add_ticket(
                s, pc1, "f", state=ack, priority=Priority.P1, respond_by=10, resolve_by=200
            ),
            # Finished tickets last, whatever their deadlines were.
            "resolved": add_ticket(
                s, pc1, "g", state=TicketState.RESOLVED, respond_by=-100, resolve_by=-90
            ),
            "closed": add_ticket(
                s, pc1, "h", state=TicketState.CLOSED, opened=5, respond_by=-100, resolve_by=-90
            ),
        }

    built = store.call(build)
    expected = [
        "missed at -60",
        "in progress, resolve at 20",
        "new, respond at 30",
        "reopened, resolve at 50",
        "P1 at 200",
        "ack, resolve at 200",
        "closed",  # finished: newest first
        "resolved",
    ]
    assert listed(store) == [built[n] for n in expected]
    assert listed(store, sort=Sort.URGENCY) == listed(store)
    assert listed(store, sort=Sort.URGENCY, limit=3) == [built[n] for n in expected[:3]]


def test_urgency_of_tickets_the_rules_opened(store: Store) -> None:
    """Deadlines as triage sets them: a P2 due in an hour beats a P3 due in four."""
    machine = Machine(store)
    warning = [machine.send(CheckStatus.WARNING, m, DNS) for m in (1, 2, 3)][-1].opened[0]
    critical = machine.open_ticket(minute=100)  # opened at at(102), respond by at(162)
    assert stored(store, warning).respond_by == at(3 + 4 * 60)
    assert listed(store) == [critical, warning]
    assert listed(store, sort=Sort.NEWEST) == [critical, warning]
    # Taken, the critical one now races its resolution deadline (8 h), later than the warning's
    # first response.
    act(store, critical, "alice", Take(), 110)
    assert listed(store) == [warning, critical]


def test_the_page_is_bounded(store: Store) -> None:
    pc1 = Machine(store, 1).agent_id
    store.call(
        lambda s: [add_ticket(s, pc1, f"c{i}", opened=i) for i in range(desk.DEFAULT_PAGE + 1)]
    )
    assert len(listed(store)) == desk.DEFAULT_PAGE
    assert len(listed(store, limit=desk.MAX_PAGE + 5)) == desk.DEFAULT_PAGE + 1


def test_a_reopened_ticket_is_in_the_queue_again(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket()
    act(store, ticket_id, "alice", Resolve("fixed"), 10)
    assert listed(store, open_only=True) == []
    act(store, ticket_id, "alice", Reopen(), 20)
    assert listed(store, open_only=True, states=frozenset({TicketState.REOPENED})) == [ticket_id]


def test_a_reopened_ticket_needs_a_fresh_run_of_passes(store: Store) -> None:
    machine = Machine(store)
    ticket_id = machine.open_ticket(minute=1)
    machine.send(CheckStatus.OK, 10)
    machine.send(CheckStatus.OK, 11)  # resolved by the machine
    act(store, ticket_id, "alice", Reopen("the user says it is still slow"), minute=12)
    machine.send(CheckStatus.OK, 13)
    ticket = store.call(lambda s: s.get(Ticket, ticket_id))
    assert ticket is not None and ticket.state == TicketState.REOPENED
    machine.send(CheckStatus.OK, 14)
    ticket = store.call(lambda s: s.get(Ticket, ticket_id))
    assert ticket is not None and ticket.state == TicketState.RESOLVED
