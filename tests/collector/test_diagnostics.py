"""collector/diagnostics.py on SQLite and PostgreSQL: a request's way from queued to its end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from collector import diagnostics, fleet
from collector.actions import DiagnosticsPolicy, is_remediation, validate
from collector.diagnostics import DiagnosticError, NoSuchMachineError, Update
from collector.store.models import Diagnostic, Ticket, TicketEvent
from collector.store.runner import Store
from remdiag.vocabulary import DiagnosticState
from tests.collector.factories import NOW, at, enrolled
from tests.collector.test_sla_sweep import open_ticket

HOUR = timedelta(hours=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def queue(store: Store, agent_id: str, minute: int = 0, action: str = "inventory") -> str:
    view = store.call(
        lambda s: diagnostics.request(s, agent_id, action, {}, "alice", at(minute), HOUR)
    )
    return view.row.id


def state_of(store: Store, request_id: str) -> DiagnosticState:
    row = store.call(lambda s: s.get(Diagnostic, request_id))
    assert row is not None
    return DiagnosticState(row.state)


def test_a_request_is_claimed_for_sending_once(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    request_id = queue(store, agent_id)
    assert state_of(store, request_id) is DiagnosticState.QUEUED
    first = store.call(lambda s: diagnostics.claim(s, request_id, at(1)))
    again = store.call(lambda s: diagnostics.claim(s, request_id, at(1)))
    assert first is not None and first.row.state == DiagnosticState.SENT and again is None
    assert first.row.sent_at == at(1)


def test_a_machine_that_connects_gets_what_waited_oldest_first(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    other = store.call(lambda s: enrolled(s, 2)).agent_id
    older, newer = queue(store, agent_id, 0), queue(store, agent_id, 5)
    queue(store, other, 1)
    claimed = store.call(lambda s: diagnostics.claim_pending(s, agent_id, at(10)))
    assert [v.row.id for v in claimed] == [older, newer]
    assert store.call(lambda s: diagnostics.claim_pending(s, agent_id, at(10))) == []


def test_expired_requests_are_never_sent_and_say_why(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    request_id = queue(store, agent_id)
    late = at(61)
    assert store.call(lambda s: diagnostics.claim_pending(s, agent_id, late)) == []
    expired = store.call(lambda s: diagnostics.expire(s, late))
    assert [v.row.id for v in expired] == [request_id]
    assert expired[0].row.state == DiagnosticState.EXPIRED
    assert expired[0].row.error == "expired before the machine came online"
    assert store.call(lambda s: diagnostics.expire(s, late)) == []


def test_in_flight_requests_queue_again_when_the_machine_goes(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    request_id = queue(store, agent_id)
    store.call(lambda s: diagnostics.claim(s, request_id, at(1)))
    assert store.call(lambda s: diagnostics.requeue(s, agent_id, at(2))) == [request_id]
    assert state_of(store, request_id) is DiagnosticState.QUEUED


def update(request_id: str, state: DiagnosticState, **fields: object) -> Update:
    values: dict[str, object] = {
        "progress": "",
        "output": None,
        "error": "",
        "truncated": False,
        **fields,
    }
    return Update(request_id=request_id, state=state, **values)  # type: ignore[arg-type]


def test_the_agents_answers_are_recorded_and_a_late_one_changes_nothing(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    request_id = queue(store, agent_id)
    store.call(lambda s: diagnostics.claim(s, request_id, at(1)))
    running = update(request_id, DiagnosticState.RUNNING, progress="walking /")
    seen = store.call(
        lambda s: diagnostics.apply_update(s, agent_id, running, at(2), is_remediation)
    )
    assert seen is not None and seen.row.progress == "walking /"
    done = update(request_id, DiagnosticState.DONE, output={"top": [1, 2]}, truncated=True)
    store.call(lambda s: diagnostics.apply_update(s, agent_id, done, at(3), is_remediation))
    row = store.call(lambda s: s.get(Diagnostic, request_id))
    assert row is not None and row.state == DiagnosticState.DONE
    assert (row.output, row.truncated, row.finished_at) == ({"top": [1, 2]}, True, at(3))
    failed = update(request_id, DiagnosticState.FAILED, error="late")
    assert (
        store.call(lambda s: diagnostics.apply_update(s, agent_id, failed, at(4), is_remediation))
        is None
    )
    assert state_of(store, request_id) is DiagnosticState.DONE


def test_an_agent_cannot_answer_for_another_machine(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    intruder = store.call(lambda s: enrolled(s, 2)).agent_id
    request_id = queue(store, agent_id)
    forged = update(request_id, DiagnosticState.DONE, output={"all": "fine"})
    assert (
        store.call(lambda s: diagnostics.apply_update(s, intruder, forged, at(1), is_remediation))
        is None
    )
    assert state_of(store, request_id) is DiagnosticState.QUEUED


def test_a_machine_is_found_by_id_or_unique_host_name(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    hostname = store.call(lambda s: diagnostics.find_agent(s, agent_id)).hostname
    assert store.call(lambda s: diagnostics.find_agent(s, hostname)).id == agent_id
    with pytest.raises(NoSuchMachineError, match="no machine 'nope'"):
        store.call(lambda s: diagnostics.find_agent(s, "nope"))
    store.call(lambda s: fleet.revoke(s, agent_id, NOW))
    with pytest.raises(DiagnosticError, match="is revoked"):
        queue(store, agent_id)


def test_a_request_for_a_ticket_must_be_about_its_machine(store: Store) -> None:
    ticket_id = open_ticket(store)
    other = store.call(lambda s: enrolled(s, 2)).agent_id
    with pytest.raises(DiagnosticError, match="about another machine"):
        store.call(
            lambda s: diagnostics.request(s, other, "inventory", {}, "a", NOW, HOUR, ticket_id)
        )
    with pytest.raises(NoSuchMachineError, match="no ticket 999"):
        store.call(lambda s: diagnostics.request(s, other, "inventory", {}, "a", NOW, HOUR, 999))


def test_remediation_on_a_ticket_leaves_events_on_its_timeline(store: Store) -> None:
    ticket_id = open_ticket(store)
    agent_id = store.call(lambda s: s.get(Ticket, ticket_id).agent_id)  # type: ignore[union-attr]
    view = store.call(
        lambda s: diagnostics.request(
            s, agent_id, "flush_dns_cache", {}, "bob", NOW, HOUR, ticket_id
        )
    )
    for state, error in ((DiagnosticState.RUNNING, ""), (DiagnosticState.FAILED, "no cache")):
        answer = update(view.row.id, state, error=error)
        store.call(
            lambda s, a=answer: diagnostics.apply_update(s, agent_id, a, NOW, is_remediation)
        )
    messages = store.call(
        lambda s: list(
            s.scalars(
                select(TicketEvent.message).where(
                    TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "remediation"
                )
            )
        )
    )
    assert messages == [
        "flush_dns_cache (asked by bob) in progress",
        "flush_dns_cache (asked by bob) failed: no cache",
    ]


def test_the_policy_refuses_unknown_actions_and_bad_arguments() -> None:
    with pytest.raises(DiagnosticError, match="nope"):
        validate("nope", {})
    with pytest.raises(DiagnosticError, match="path"):
        validate("largest_dirs", {"path": "relative/dir"})
    assert validate("top_processes", {})["by"] == "cpu"
    with pytest.raises(ValueError, match="not a remediation action"):
        DiagnosticsPolicy(remediation_actions=["inventory"])
    with pytest.raises(ValueError, match=r"triage\.disk\.free_space"):
        DiagnosticsPolicy(triage={"disk.free_space": [{"action": "ping", "args": {}}]})  # type: ignore[dict-item]
    policy = DiagnosticsPolicy(remediation_enabled=True, remediation_actions=["clear_temp"])
    assert policy.allows_remediation("clear_temp")
    assert not policy.allows_remediation("flush_dns_cache")
    assert not DiagnosticsPolicy().allows_remediation("clear_temp")
    assert [s.action for s in DiagnosticsPolicy().triage_for("network.dns", "network")] == [
        "interfaces_routes"
    ]
