"""collector/intake.py on SQLite and PostgreSQL: many streams' writes in few transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from collector.engine import TicketRules
from collector.ingest import Batch, IngestOutcome, UnknownAgentError
from collector.intake import (
    DEFAULT_MAX_RESULTS,
    Beat,
    Intake,
    IntakeClosedError,
    SendersPerSecond,
)
from collector.store.models import Agent, CheckResult, Ticket
from collector.store.runner import Store
from collector.triage import DeskSettings
from remdiag.vocabulary import CheckStatus
from tests.collector.factories import NOW, enrolled, result

RULES = TicketRules(fails_before_ticket=1, passes_before_resolve=2)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


class Commits:
    """Counts the transactions the store commits."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.engine, "commit", self._committed)

    def _committed(self, _connection: object) -> None:
        self.count += 1


async def running(intake: Intake) -> AsyncIterator[Intake]:
    writer = asyncio.create_task(intake.run())
    try:
        yield intake
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


@pytest.fixture
async def intake(store: Store) -> AsyncIterator[Intake]:
    async for started in running(Intake(store, RULES, DeskSettings(), {})):
        yield started


def machines(store: Store, count: int) -> list[str]:
    return [store.call(lambda s, n=n: enrolled(s, n)).agent_id for n in range(1, count + 1)]


def stored_results(store: Store) -> int:
    return store.call(lambda s: s.scalar(select(func.count()).select_from(CheckResult))) or 0


def batch(agent_id: str, sequence: int, *statuses: CheckStatus) -> Batch:
    at = NOW + timedelta(seconds=sequence)
    return Batch(agent_id, sequence, [result(s, observed_at=at) for s in statuses], at)


async def test_batches_of_many_agents_arriving_together_share_one_transaction(
    store: Store, intake: Intake
) -> None:
    agents = machines(store, 30)
    commits = Commits(store)
    outcomes = await asyncio.gather(
        *(intake.ingest(batch(a, 1, CheckStatus.OK, CheckStatus.CRITICAL)) for a in agents)
    )
    # All 30 were queued before the writer woke: one group, one commit.
    assert commits.count == 1
    assert all(o.stored and o.acked_through == 1 for o in outcomes)
    assert stored_results(store) == 60
    # Each batch's second result failed once (fails_before_ticket=1): its own ticket.
    assert all(len(o.opened) == 1 for o in outcomes)
    assert len({o.opened[0] for o in outcomes}) == 30


async def test_a_group_holds_at_most_max_results(store: Store) -> None:
    agents = machines(store, 6)
    commits = Commits(store)
    async for intake in running(Intake(store, RULES, DeskSettings(), {}, max_results=8)):
        await asyncio.gather(*(intake.ingest(batch(a, 1, *[CheckStatus.OK] * 4)) for a in agents))
    assert commits.count == 3  # two batches of 4 results a group
    assert stored_results(store) == 24


async def test_a_bad_batch_fails_alone_and_its_neighbours_are_stored(
    store: Store, intake: Intake
) -> None:
    agents = machines(store, 4)
    outcomes = await asyncio.gather(
        *(intake.ingest(batch(a, 1, CheckStatus.OK)) for a in agents[:2]),
        intake.ingest(batch("no-such-agent", 1, CheckStatus.OK)),
        *(intake.ingest(batch(a, 1, CheckStatus.OK)) for a in agents[2:]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], UnknownAgentError)
    good = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(good) == 4 and all(isinstance(o, IngestOutcome) and o.stored for o in good)
    assert stored_results(store) == 4


async def test_a_resend_in_the_same_group_as_its_first_send_is_stored_once(
    store: Store, intake: Intake
) -> None:
    """Two streams of one agent (the old one not yet closed) sending the same sequence."""
    (agent_id,) = machines(store, 1)
    first, again = await asyncio.gather(
        intake.ingest(batch(agent_id, 1, CheckStatus.CRITICAL)),
        intake.ingest(batch(agent_id, 1, CheckStatus.CRITICAL)),
    )
    assert first.stored and not again.stored
    assert again.acked_through == 1
    assert stored_results(store) == 1
    tickets = store.call(lambda s: s.scalar(select(func.count()).select_from(Ticket)))
    assert tickets == 1


async def test_heartbeats_are_written_together_and_a_lagging_agent_gets_its_policy(
    store: Store, intake: Intake
) -> None:
    """Heartbeats alone wait a moment for company (beat_linger_s), then go as one group."""
    agents = machines(store, 3)
    store.call(lambda s: s.execute(update(Agent).values(policy_version=7)))
    later = NOW + timedelta(hours=1)
    commits = Commits(store)
    replies = await asyncio.gather(
        intake.heartbeat(Beat(agents[0], later, dropped=5, running=7)),  # up to date
        intake.heartbeat(Beat(agents[1], later, dropped=0, running=3)),  # behind
        intake.heartbeat(Beat(agents[2], later)),  # does not report versions
    )
    assert commits.count == 1
    assert replies[0] is None and replies[2] is None
    assert replies[1] is not None
    rows = store.call(lambda s: {a.id: a for a in s.scalars(select(Agent))})
    assert all(rows[a].last_seen_at == later for a in agents)
    assert rows[agents[0]].spool_dropped == 5
    assert rows[agents[1]].running_policy_version == 3


async def test_after_the_writer_stops_writes_are_refused_not_lost_silently(
    store: Store,
) -> None:
    (agent_id,) = machines(store, 1)
    async for intake in running(Intake(store, RULES, DeskSettings(), {})):
        await intake.ingest(batch(agent_id, 1, CheckStatus.OK))
    with pytest.raises(IntakeClosedError):
        await intake.ingest(batch(agent_id, 2, CheckStatus.OK))
    assert stored_results(store) == 1


async def test_heartbeats_waiting_for_company_go_with_the_next_batch(store: Store) -> None:
    first, second = machines(store, 2)
    later = NOW + timedelta(hours=1)
    # A linger far beyond the test: only the batch can have carried the heartbeat.
    async for intake in running(Intake(store, RULES, DeskSettings(), {}, beat_linger_s=3600)):
        beat = intake.heartbeat(Beat(second, later))
        await asyncio.sleep(0.05)
        assert not beat.done()
        commits = Commits(store)
        await intake.ingest(batch(first, 1, CheckStatus.OK))
        assert await beat is None
        assert commits.count == 1
    seen = store.call(lambda s: s.scalar(select(Agent.last_seen_at).where(Agent.id == second)))
    assert seen == later


async def test_a_small_group_waits_for_company_before_it_is_written(store: Store) -> None:
    """A quiet fleet's batches come one at a time: lingering shares one transaction."""
    first, second = machines(store, 2)
    commits = Commits(store)
    lingering = Intake(store, RULES, DeskSettings(), {}, batch_linger_s=3600, linger_min_senders=1)
    async for intake in running(lingering):
        early = asyncio.ensure_future(intake.ingest(batch(first, 1, CheckStatus.OK)))
        await asyncio.sleep(0.05)
        assert not early.done() and commits.count == 0
        # A linger far beyond the test: only filling the group (max_results) sends it.
        late = intake.ingest(batch(second, 1, *[CheckStatus.OK] * (DEFAULT_MAX_RESULTS - 1)))
        outcomes = await asyncio.gather(early, late)
    assert commits.count == 1
    assert all(o.stored for o in outcomes)
    assert stored_results(store) == DEFAULT_MAX_RESULTS


async def test_a_lone_batch_is_written_once_its_linger_is_over(store: Store) -> None:
    (agent_id,) = machines(store, 1)
    lingering = Intake(store, RULES, DeskSettings(), {}, batch_linger_s=0.2, linger_min_senders=1)
    async for intake in running(lingering):
        outcome = await intake.ingest(batch(agent_id, 1, CheckStatus.OK))
        again = await intake.ingest(batch(agent_id, 2, CheckStatus.OK))
    assert outcome.stored and again.stored and again.acked_through == 2
    assert stored_results(store) == 2


async def test_a_few_machines_batches_do_not_linger(store: Store) -> None:
    """Below `linger_min_senders` machines a second company is unlikely: no waiting."""
    (agent_id,) = machines(store, 1)
    async for intake in running(Intake(store, RULES, DeskSettings(), {}, batch_linger_s=3600)):
        outcome = await asyncio.wait_for(intake.ingest(batch(agent_id, 1, CheckStatus.OK)), 30)
    assert outcome.stored


def test_senders_are_counted_per_second_and_forgotten_after_a_silence() -> None:
    senders = SendersPerSecond()
    for n in range(20):
        senders.saw(f"agent-{n % 5}", 100.0 + n / 40)  # 5 machines within one second
    assert senders.count(100.9) == 5
    senders.saw("agent-9", 101.2)
    assert senders.count(101.3) == 5  # the whole second before still counts
    assert senders.count(102.5) == 1  # then only the second before: agent-9
    assert senders.count(104.0) == 0


async def test_after_a_large_group_a_small_one_does_not_linger(store: Store) -> None:
    """A collector writing large groups is loaded: waiting would only lose time."""
    first, second = machines(store, 2)
    lingering = Intake(
        store, RULES, DeskSettings(), {}, max_results=10, batch_linger_s=3600, linger_min_senders=1
    )
    async for intake in running(lingering):
        await intake.ingest(batch(first, 1, *[CheckStatus.OK] * 10))  # full: written at once
        outcome = await asyncio.wait_for(intake.ingest(batch(second, 1, CheckStatus.OK)), 30)
    assert outcome.stored
