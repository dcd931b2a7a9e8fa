"""collector/ingest.py (and fleet's heartbeat) on SQLite and PostgreSQL: rows, tickets, events."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import fleet, windows
from collector.engine import TicketRules
from collector.ingest import IncomingResult, IngestOutcome, UnknownAgentError, ingest_batch
from collector.store.models import Agent, CheckResult, CheckState, Ticket, TicketEvent
from collector.store.runner import Store
from remdiag.vocabulary import CheckStatus, Priority, Severity, TicketState, Tier
from tests.collector.factories import DISK, NOW, at, counts, enrolled, result

RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2)
OK, WARNING, CRITICAL, UNKNOWN = (
    CheckStatus.OK,
    CheckStatus.WARNING,
    CheckStatus.CRITICAL,
    CheckStatus.UNKNOWN,
)


class Sender:
    """One enrolled agent sending numbered batches, as a real agent numbers them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.agent_id = store.call(lambda s: enrolled(s)).agent_id
        self.sequence = 0
        self.rules = RULES

    def send(self, *results: IncomingResult, sequence: int | None = None) -> IngestOutcome:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        now = at(sequence)
        return self.store.call(
            lambda s: ingest_batch(s, self.agent_id, sequence, list(results), self.rules, now)
        )

    def statuses(self, *statuses: CheckStatus, check_id: str = DISK) -> list[IngestOutcome]:
        """One batch per status."""
        return [self.send(result(status, check_id, at(self.sequence + 1))) for status in statuses]

    def tickets(self) -> list[Ticket]:
        return self.store.call(lambda s: list(s.scalars(select(Ticket).order_by(Ticket.id))))

    def events(self, ticket_id: int) -> list[TicketEvent]:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        return self.store.call(lambda s: list(s.scalars(query.order_by(TicketEvent.id))))

    def state(self, check_id: str = DISK) -> CheckState | None:
        return self.store.call(lambda s: s.get(CheckState, (self.agent_id, check_id)))

    def agent(self) -> Agent:
        found = self.store.call(lambda s: s.get(Agent, self.agent_id))
        assert found is not None
        return found

    def counts(self) -> dict[str, int]:
        return self.store.call(counts)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def agent(store: Store) -> Sender:
    return Sender(store)


def test_n_minus_one_failures_open_nothing(agent: Sender) -> None:
    outcomes = agent.statuses(CRITICAL, CRITICAL)
    assert [o.opened for o in outcomes] == [(), ()]
    assert agent.tickets() == []
    assert agent.counts()["check_results"] == 2


def test_n_failures_open_one_ticket_with_an_opened_event(agent: Sender) -> None:
    outcomes = agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    [ticket] = agent.tickets()
    assert outcomes[-1].opened == (ticket.id,)
    assert ticket.state == TicketState.NEW
    assert ticket.severity == Severity.CRITICAL
    assert ticket.failure_count == 3
    assert ticket.agent_id == agent.agent_id and ticket.check_id == DISK
    assert ticket.title == f"{DISK} failing on pc-1"
    assert ticket.opened_at == at(3)
    [event] = agent.events(ticket.id)
    assert (event.kind, event.actor) == ("opened", "system")
    assert "failed 3 times in a row (threshold 3)" in event.message
    evidence = agent.store.call(lambda s: s.get(CheckResult, ticket.evidence_result_id))
    assert evidence is not None and evidence.sequence == 3


def test_further_failures_grow_the_one_ticket(agent: Sender) -> None:
    agent.statuses(WARNING, WARNING, WARNING)
    outcomes = agent.statuses(WARNING, WARNING)
    assert [o.opened for o in outcomes] == [(), ()]
    [ticket] = agent.tickets()
    assert ticket.failure_count == 5
    assert ticket.severity == Severity.WARNING
    assert ticket.updated_at == at(5)
    latest = agent.store.call(lambda s: s.get(CheckResult, ticket.evidence_result_id))
    assert latest is not None and latest.sequence == 5
    assert [e.kind for e in agent.events(ticket.id)] == ["opened"]


def test_a_critical_failure_raises_an_open_warning_ticket(agent: Sender) -> None:
    agent.statuses(WARNING, WARNING, WARNING, CRITICAL)
    [ticket] = agent.tickets()
    assert ticket.severity == Severity.CRITICAL
    assert [e.kind for e in agent.events(ticket.id)] == ["opened", "severity"]


def test_failures_within_one_batch_count_one_by_one(agent: Sender) -> None:
    outcome = agent.send(*(result(CRITICAL) for _ in range(4)))
    [ticket] = agent.tickets()
    assert outcome.opened == (ticket.id,)
    assert ticket.failure_count == 4
    assert agent.counts()["check_results"] == 4


def test_resend_of_a_stored_sequence_writes_nothing(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    before = agent.counts()
    [ticket_before] = agent.tickets()
    for sequence in (3, 2, 1):
        outcome = agent.send(result(CRITICAL), result(OK), sequence=sequence)
        assert outcome == IngestOutcome(acked_through=3, stored=False)
    assert agent.counts() == before
    [ticket_after] = agent.tickets()
    assert ticket_after.failure_count == ticket_before.failure_count
    assert agent.agent().last_sequence == 3


def test_passes_resolve_the_ticket_with_a_resolved_event(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    first_pass, second_pass = agent.statuses(OK, OK)
    [ticket] = agent.tickets()
    assert first_pass.resolved == ()
    assert second_pass.resolved == (ticket.id,)
    assert ticket.state == TicketState.RESOLVED
    assert ticket.resolved_at == at(5)
    resolved = agent.events(ticket.id)[-1]
    assert (resolved.kind, resolved.actor) == ("resolved", "system")
    assert resolved.message.startswith("resolved automatically: passed 2 times in a row")
    state = agent.state()
    assert state is not None and state.open_ticket_id is None


def test_after_the_reopen_window_a_new_run_opens_a_new_ticket(agent: Sender) -> None:
    agent.rules = replace(RULES, reopen_window_s=60)  # batches here are a minute apart
    agent.statuses(CRITICAL, CRITICAL, CRITICAL, OK, OK, WARNING, WARNING)
    assert len(agent.tickets()) == 1
    agent.statuses(WARNING)
    first, second = agent.tickets()
    assert first.state == TicketState.RESOLVED
    assert second.state == TicketState.NEW and second.severity == Severity.WARNING
    state = agent.state()
    assert state is not None and state.open_ticket_id == second.id


def test_unknown_results_are_stored_but_change_no_counter(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, UNKNOWN, UNKNOWN)
    state = agent.state()
    assert state is not None
    assert (state.consecutive_failures, state.consecutive_passes) == (2, 0)
    assert state.status == UNKNOWN
    assert agent.tickets() == []
    agent.statuses(CRITICAL)
    assert len(agent.tickets()) == 1


@pytest.mark.parametrize(
    ("statuses", "failures", "passes"),
    [
        ((CRITICAL,), 1, 0),
        ((WARNING, CRITICAL), 2, 0),
        ((CRITICAL, CRITICAL, OK), 0, 1),
        ((OK, OK, OK), 0, 3),
        ((OK, WARNING), 1, 0),
    ],
)
def test_check_state_reflects_the_consecutive_counters(
    agent: Sender, statuses: tuple[CheckStatus, ...], failures: int, passes: int
) -> None:
    agent.statuses(*statuses)
    state = agent.state()
    assert state is not None
    assert (state.consecutive_failures, state.consecutive_passes) == (failures, passes)
    assert state.status == statuses[-1]
    assert state.observed_at == at(len(statuses))
    # Each flip between passing and failing is kept for flap detection.
    flips = sum(a.is_failure != b.is_failure for a, b in itertools.pairwise(statuses))
    assert len(state.changes) == flips and all(isinstance(t, float) for t in state.changes)
    latest_failure = agent.store.call(
        lambda s: s.get(CheckResult, state.last_failure_id) if state.last_failure_id else None
    )
    failed = [i + 1 for i, status in enumerate(statuses) if status.is_failure]
    assert (latest_failure.sequence if latest_failure else None) == (failed[-1] if failed else None)


def test_checks_are_counted_apart(agent: Sender) -> None:
    for _ in range(3):
        agent.send(result(CRITICAL, DISK), result(OK, "network.dns"))
    [ticket] = agent.tickets()
    assert ticket.check_id == DISK
    dns = agent.state("network.dns")
    assert dns is not None and (dns.consecutive_failures, dns.consecutive_passes) == (0, 3)


def test_a_batch_for_an_unknown_agent_raises_and_writes_nothing(store: Store) -> None:
    before = store.call(counts)
    with pytest.raises(UnknownAgentError):
        store.call(lambda s: ingest_batch(s, "no-such-agent", 1, [result()], RULES, NOW))
    assert store.call(counts) == before


def test_ingest_moves_the_high_water_mark_and_last_seen(agent: Sender) -> None:
    agent.statuses(OK, OK)
    stored = agent.agent()
    assert stored.last_sequence == 2
    assert stored.last_seen_at == at(2)


def test_heartbeat_updates_last_seen_and_nothing_else(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    before = store.call(counts)
    later = at(90)

    store.call(lambda s: fleet.heartbeat(s, agent_id, later))
    agent = store.call(lambda s: s.get(Agent, agent_id))
    assert agent is not None
    assert agent.last_seen_at == later
    assert agent.last_sequence == 0
    assert store.call(counts) == before


def test_a_ticket_closed_by_hand_is_not_fed_by_later_failures(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    (opened,) = agent.tickets()

    def close(session: Session) -> None:
        ticket = session.get(Ticket, opened.id)
        assert ticket is not None
        ticket.state = int(TicketState.CLOSED)

    agent.store.call(close)
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    first, second = agent.tickets()
    assert first.state == TicketState.CLOSED and first.failure_count == opened.failure_count
    assert second.state == TicketState.NEW


def test_an_opened_ticket_is_placed_by_priority_tier_and_sla(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    (ticket,) = agent.tickets()
    # critical on a machine of default (medium) impact: P2; a disk-space ticket starts at L1.
    assert ticket.priority == Priority.P2
    assert ticket.tier == Tier.L1
    assert ticket.respond_by == ticket.opened_at + timedelta(hours=1)
    assert ticket.resolve_by == ticket.opened_at + timedelta(hours=8)
    (opened,) = agent.events(ticket.id)
    assert opened.message.endswith("P2 (impact medium), L1")


def test_failing_again_within_the_reopen_window_reopens_the_ticket(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL, OK, OK, WARNING, WARNING, WARNING)
    (ticket,) = agent.tickets()
    assert ticket.state == TicketState.REOPENED and ticket.reopen_count == 1
    assert ticket.resolved_at is None and ticket.resolved_by is None
    # Fresh deadlines from the reopening (a warning on a medium-impact machine: P3).
    assert ticket.respond_by == at(8) + timedelta(hours=4)
    assert [e.kind for e in agent.events(ticket.id)] == ["opened", "resolved", "reopened"]
    assert "failed 3 times in a row" in agent.events(ticket.id)[-1].message
    state = agent.state()
    assert state is not None and state.open_ticket_id == ticket.id == state.last_ticket_id


def test_a_ticket_a_person_closed_is_never_reopened(agent: Sender) -> None:
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    (ticket,) = agent.tickets()

    def close(s: Session) -> None:
        found = s.get(Ticket, ticket.id)
        assert found is not None
        found.state = int(TicketState.CLOSED)

    agent.store.call(close)
    agent.statuses(OK, CRITICAL, CRITICAL, CRITICAL)
    first, second = agent.tickets()
    assert first.state == TicketState.CLOSED and first.reopen_count == 0
    assert second.state == TicketState.NEW


def test_impact_comes_from_the_machines_tags(agent: Sender) -> None:
    agent.store.call(lambda s: fleet.tag(s, agent.agent_id, ["vip"], []))
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    (ticket,) = agent.tickets()
    assert ticket.priority == Priority.P1  # critical (high urgency) x vip (high impact)
    assert "P1 (impact high)" in agent.events(ticket.id)[0].message


def test_a_flapping_check_opens_a_ticket_that_is_not_resolved_until_stable(
    agent: Sender,
) -> None:
    agent.rules = replace(RULES, flap_changes=4, flap_window_s=15 * 60)
    agent.statuses(WARNING, OK, WARNING, OK, WARNING, OK, WARNING)  # six flips, never 3 in a row
    (ticket,) = agent.tickets()
    assert ticket.flapping and ticket.state == TicketState.NEW
    assert agent.events(ticket.id)[0].message.startswith("flapping: more than 4")
    agent.statuses(OK, OK, OK)  # passes in a row, but the flips are still in the window
    assert agent.tickets()[0].state == TicketState.NEW
    agent.statuses(*[OK] * 10)
    (ticket,) = agent.tickets()
    assert ticket.state == TicketState.RESOLVED and not ticket.flapping
    kinds = [e.kind for e in agent.events(ticket.id)]
    assert kinds == ["opened", "resolved"]
    assert "and stable again" in agent.events(ticket.id)[-1].message


def test_an_open_ticket_is_marked_flapping_and_unmarked(agent: Sender) -> None:
    agent.rules = replace(RULES, flap_changes=4, flap_window_s=10 * 60)
    agent.statuses(CRITICAL, CRITICAL, CRITICAL, OK, CRITICAL, OK, CRITICAL, OK)
    (ticket,) = agent.tickets()
    assert ticket.flapping
    agent.statuses(*[OK] * 8)
    (ticket,) = agent.tickets()
    assert ticket.state == TicketState.RESOLVED
    messages = [e.message for e in agent.events(ticket.id) if e.kind == "flapping"]
    assert messages[0].startswith("flapping: more than 4 pass/fail flips within 10 minutes")


def test_no_ticket_opens_inside_a_maintenance_window_but_results_are_kept(
    agent: Sender,
) -> None:
    spec = windows.window(name="patching", starts_at=NOW, duration=timedelta(hours=1), tags=["lab"])
    agent.store.call(lambda s: fleet.tag(s, agent.agent_id, ["lab"], []))
    created = agent.store.call(lambda s: windows.create(s, spec, "alice", NOW))
    agent.statuses(CRITICAL, CRITICAL, CRITICAL, CRITICAL)
    assert agent.tickets() == []
    assert agent.counts()["check_results"] == 4
    agent.store.call(lambda s: windows.delete(s, created.id))
    agent.statuses(CRITICAL)  # the run continued: the next failure opens at once
    (ticket,) = agent.tickets()
    assert ticket.failure_count == 5


def test_a_window_for_other_machines_changes_nothing(agent: Sender) -> None:
    spec = windows.window(name="servers", starts_at=NOW, duration=timedelta(hours=1), tags=["srv"])
    agent.store.call(lambda s: windows.create(s, spec, "alice", NOW))
    agent.statuses(CRITICAL, CRITICAL, CRITICAL)
    assert len(agent.tickets()) == 1
