"""The pure ticket rules of collector/engine.py, run over recorded status sequences."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.engine import (
    Decision,
    FlappingChanged,
    OpenTicket,
    RecordFailure,
    ResolveTicket,
    RuleState,
    TicketRules,
    counts_only,
    decide,
)
from remdiag.vocabulary import CheckStatus, Severity

# Hysteresis alone: no reopening; flapping needs more flips than these sequences have.
RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2, reopen_window_s=0)
STEP_S = 60.0
"""Recorded sequences arrive one result a minute."""
STATUS = {
    "O": CheckStatus.OK,
    "W": CheckStatus.WARNING,
    "C": CheckStatus.CRITICAL,
    "U": CheckStatus.UNKNOWN,
}
OPEN_W = OpenTicket(Severity.WARNING)
OPEN_C = OpenTicket(Severity.CRITICAL)
MORE = RecordFailure()
RAISED = RecordFailure(raised_to=Severity.CRITICAL)
RESOLVE = ResolveTicket(passes=2)


def replay(
    statuses: str, rules: TicketRules = RULES, state: RuleState | None = None
) -> tuple[RuleState, list[Decision | None]]:
    """Feed one status per letter (O ok, W warning, C critical, U unknown) through the rules."""
    state = state or RuleState()
    decisions: list[Decision | None] = []
    for index, letter in enumerate(statuses):
        state, decision = decide(state, STATUS[letter], rules, index * STEP_S)
        decisions.append(decision)
    return state, decisions


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param("WW", [None, None], id="n-1 failures open nothing"),
        pytest.param("WWW", [None, None, OPEN_W], id="nth warning opens a warning ticket"),
        pytest.param("CCC", [None, None, OPEN_C], id="nth critical opens a critical ticket"),
        pytest.param("WWC", [None, None, OPEN_C], id="severity is the nth result's"),
        pytest.param("CCCCC", [None, None, OPEN_C, MORE, MORE], id="never a second ticket"),
        pytest.param("WWWWC", [None, None, OPEN_W, MORE, RAISED], id="warning raised to critical"),
        pytest.param("CCCW", [None, None, OPEN_C, MORE], id="never lowered"),
        pytest.param("WWWCC", [None, None, OPEN_W, RAISED, MORE], id="raised only once"),
        pytest.param("WWUW", [None, None, None, OPEN_W], id="unknown does not break a run"),
        pytest.param("UUUUU", [None] * 5, id="unknown alone opens nothing"),
        pytest.param("WWOWW", [None] * 5, id="a pass resets the failure count"),
        pytest.param("OOOO", [None] * 4, id="passes without a ticket do nothing"),
        pytest.param("WWWO", [None, None, OPEN_W, None], id="m-1 passes do not resolve"),
        pytest.param("WWWOO", [None, None, OPEN_W, None, RESOLVE], id="m passes resolve"),
        pytest.param("WWWOUO", [None, None, OPEN_W, None, None, RESOLVE], id="unknown in passes"),
        pytest.param(
            "WWWOWOO", [None, None, OPEN_W, None, MORE, None, RESOLVE], id="failure resets passes"
        ),
        pytest.param(
            "WWWOOO", [None, None, OPEN_W, None, RESOLVE, None], id="resolved once, not again"
        ),
        pytest.param(
            "CCCOOWWW",
            [None, None, OPEN_C, None, RESOLVE, None, None, OPEN_W],
            id="after resolve a new run opens again",
        ),
        pytest.param(
            "CCCOOWW", [None, None, OPEN_C, None, RESOLVE, None, None], id="new run needs n again"
        ),
    ],
)
def test_decisions_over_a_sequence(statuses: str, expected: list[Decision | None]) -> None:
    _, decisions = replay(statuses)
    assert decisions == expected


@pytest.mark.parametrize(
    ("statuses", "failures", "passes", "open_severity"),
    [
        ("", 0, 0, None),
        ("WW", 2, 0, None),
        ("WWO", 0, 1, None),
        ("WWWW", 4, 0, Severity.WARNING),
        ("WWWWC", 5, 0, Severity.CRITICAL),
        ("CCCO", 0, 1, Severity.CRITICAL),
        ("CCCOO", 0, 2, None),
        ("CCCOOU", 0, 2, None),
    ],
)
def test_state_after_a_sequence(
    statuses: str, failures: int, passes: int, open_severity: Severity | None
) -> None:
    state, _ = replay(statuses)
    assert (state.consecutive_failures, state.consecutive_passes) == (failures, passes)
    assert state.open_severity == open_severity
    assert state.ticket_open is (open_severity is not None)


@pytest.mark.parametrize("state", [RuleState(), RuleState(2, 0), RuleState(5, 1, Severity.WARNING)])
def test_unknown_changes_nothing(state: RuleState) -> None:
    assert decide(state, CheckStatus.UNKNOWN, RULES) == (state, None)


def test_exactly_one_open_whatever_the_run_length() -> None:
    _, decisions = replay("W" * 50)
    assert [d for d in decisions if isinstance(d, OpenTicket)] == [OPEN_W]
    assert decisions.index(OPEN_W) == RULES.fails_before_ticket - 1


def test_rules_of_one_open_and_resolve_at_once() -> None:
    rules = TicketRules(fails_before_ticket=1, passes_before_resolve=1, reopen_window_s=0)
    _, decisions = replay("COC", rules)
    assert decisions == [OPEN_C, ResolveTicket(passes=1), OPEN_C]


def test_resolve_reports_the_passes_counted() -> None:
    rules = TicketRules(fails_before_ticket=2, passes_before_resolve=4)
    _, decisions = replay("WWOOOO", rules)
    assert decisions[-1] == ResolveTicket(passes=4)
    assert decisions[:-1] == [None, OPEN_W, None, None, None]


FLAPPY = TicketRules(
    fails_before_ticket=3,
    passes_before_resolve=2,
    flap_changes=4,
    flap_window_s=10 * STEP_S,
    reopen_window_s=0,
)
FLAGGED = RecordFailure(flapping=True)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param(
            "WOWOW",
            [None] * 5,
            id="four flips is not yet flapping",
        ),
        pytest.param(
            "WOWOWO",
            [None] * 5 + [None],
            id="five flips on a pass with no ticket opens nothing",
        ),
        pytest.param(
            "WOWOWOW",
            [None] * 6 + [OpenTicket(Severity.WARNING, flapping=True)],
            id="a failure while flapping opens a ticket before a full run",
        ),
        pytest.param(
            "WWWOWOWO",
            [None, None, OPEN_W, None, MORE, None, MORE, FlappingChanged(True)],
            id="an open ticket is marked flapping on the fifth flip",
        ),
        pytest.param(
            "WWWOWOWOO",
            [None, None, OPEN_W, None, MORE, None, MORE, FlappingChanged(True), None],
            id="a flapping ticket is not resolved by passes in a row",
        ),
        pytest.param(
            "OWWWOWOW",
            [None, None, None, OPEN_W, None, MORE, None, FLAGGED],
            id="a failure can be the flip that starts flapping",
        ),
    ],
)
def test_flapping(statuses: str, expected: list[Decision | None]) -> None:
    _, decisions = replay(statuses, FLAPPY)
    assert decisions == expected


def test_a_flapping_ticket_resolves_once_the_flips_age_out_of_the_window() -> None:
    state, decisions = replay("WWWOWOWO" + "O" * 12, FLAPPY)
    # Flips at minutes 3..7; the one of minute 3 leaves the 10-minute window at minute 14,
    # after 8 passes in a row (minutes 7..14).
    assert decisions[8:14] == [None] * 6
    assert decisions[14] == ResolveTicket(passes=8)
    assert decisions[15:] == [None] * 5
    assert state.open_severity is None and not state.flapping


def test_flapping_ends_on_a_pass_then_the_next_passes_resolve() -> None:
    rules = replace(FLAPPY, passes_before_resolve=20)
    state, decisions = replay("WWWOWOWO" + "O" * 12, rules)
    assert FlappingChanged(False) in decisions
    assert state.open_severity is not None and not state.flapping
    assert decisions.index(FlappingChanged(False)) == 14


def test_a_failure_within_the_reopen_window_reopens() -> None:
    rules = replace(RULES, reopen_window_s=10 * STEP_S)
    _, decisions = replay("CCCOOWWW", rules)
    assert decisions[-1] == OpenTicket(Severity.WARNING, reopen=True)


def test_a_failure_after_the_reopen_window_opens_a_new_ticket() -> None:
    rules = replace(RULES, reopen_window_s=2 * STEP_S)
    _, decisions = replay("CCCOOWWW", rules)
    assert decisions[-1] == OPEN_W


def test_a_ticket_closed_by_a_person_is_never_reopened() -> None:
    # ingest leaves last_resolved_at unset when the ticket was closed, not resolved.
    rules = replace(RULES, reopen_window_s=3600)
    state = RuleState(last_failed=False, last_resolved_at=None)
    _, decisions = replay("WWW", rules, state)
    assert decisions[-1] == OPEN_W


def test_only_flips_are_counted_and_the_history_stays_bounded() -> None:
    state, _ = replay("WOUUWWOOW" * 10, FLAPPY)
    assert len(state.changes) <= FLAPPY.flap_changes + 1
    assert state.changes == tuple(sorted(state.changes))


@settings(max_examples=500, deadline=None)
@given(
    status=st.sampled_from(list(CheckStatus)),
    failures=st.integers(0, 5),
    passes=st.integers(0, 5),
    open_severity=st.sampled_from([None, Severity.WARNING, Severity.CRITICAL]),
    flapping=st.booleans(),
    changes=st.lists(st.floats(0, 7200), max_size=5).map(lambda c: tuple(sorted(c))),
    now=st.floats(3600, 7200),
)
def test_counts_only_is_exactly_when_decide_only_counts_a_pass(
    status: CheckStatus,
    failures: int,
    passes: int,
    open_severity: Severity | None,
    flapping: bool,
    changes: tuple[float, ...],
    now: float,
) -> None:
    # A state as ingest builds it: at most one run is counted, and it says what came last.
    if failures:
        passes = 0
    state = RuleState(
        consecutive_failures=failures,
        consecutive_passes=passes,
        open_severity=open_severity,
        flapping=flapping and open_severity is not None,
        last_failed=True if failures else False if passes else None,
        changes=changes,
    )
    after, decision = decide(state, status, RULES, now)
    only_counted = decision is None and after == replace(
        state, consecutive_passes=passes + 1, last_failed=False
    )
    shortcut = counts_only(status, failures, passes, open_severity is not None)
    if shortcut:
        assert only_counted
    # The shortcut may pass over a case that only counts (it is never wrong, just not every
    # case), but not the common one: an OK after an OK with nothing open.
    if status is CheckStatus.OK and passes and open_severity is None:
        assert shortcut
