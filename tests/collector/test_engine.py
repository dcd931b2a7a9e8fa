"""The pure ticket rules of collector/engine.py, run over recorded status sequences."""

from __future__ import annotations

import pytest

from collector.engine import (
    Decision,
    OpenTicket,
    RecordFailure,
    ResolveTicket,
    RuleState,
    TicketRules,
    decide,
)
from remdiag.vocabulary import CheckStatus, Severity

RULES = TicketRules(fails_before_ticket=3, passes_before_resolve=2)
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
    for letter in statuses:
        state, decision = decide(state, STATUS[letter], rules)
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
    assert state == RuleState(failures, passes, open_severity)
    assert state.ticket_open is (open_severity is not None)


@pytest.mark.parametrize("state", [RuleState(), RuleState(2, 0), RuleState(5, 1, Severity.WARNING)])
def test_unknown_changes_nothing(state: RuleState) -> None:
    assert decide(state, CheckStatus.UNKNOWN, RULES) == (state, None)


def test_exactly_one_open_whatever_the_run_length() -> None:
    _, decisions = replay("W" * 50)
    assert [d for d in decisions if isinstance(d, OpenTicket)] == [OPEN_W]
    assert decisions.index(OPEN_W) == RULES.fails_before_ticket - 1


def test_rules_of_one_open_and_resolve_at_once() -> None:
    rules = TicketRules(fails_before_ticket=1, passes_before_resolve=1)
    _, decisions = replay("COC", rules)
    assert decisions == [OPEN_C, ResolveTicket(passes=1), OPEN_C]


def test_resolve_reports_the_passes_counted() -> None:
    rules = TicketRules(fails_before_ticket=2, passes_before_resolve=4)
    _, decisions = replay("WWOOOO", rules)
    assert decisions[-1] == ResolveTicket(passes=4)
    assert decisions[:-1] == [None, OPEN_W, None, None, None]
