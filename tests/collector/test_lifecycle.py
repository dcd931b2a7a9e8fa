"""collector/lifecycle.py, pure: every action from every state, the first-response rule, and
the arguments it refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.lifecycle import (
    MAX_NAME,
    MAX_TEXT,
    Action,
    ActionError,
    Assign,
    Change,
    Close,
    Comment,
    Escalate,
    Reopen,
    Resolve,
    Start,
    Take,
    TicketFacts,
    plan,
)
from remdiag.vocabulary import TicketState, Tier

NEW, ACKNOWLEDGED, IN_PROGRESS, RESOLVED, CLOSED, REOPENED = (
    TicketState.NEW,
    TicketState.ACKNOWLEDGED,
    TicketState.IN_PROGRESS,
    TicketState.RESOLVED,
    TicketState.CLOSED,
    TicketState.REOPENED,
)
OPEN_STATES = [NEW, ACKNOWLEDGED, IN_PROGRESS, REOPENED]
FINISHED_STATES = [RESOLVED, CLOSED]
ALL_ACTIONS: list[Action] = [
    Take(),
    Assign("bob"),
    Start(),
    Comment("looked at it"),
    Escalate(),
    Resolve("freed 20 GiB"),
    Close(),
    Reopen(),
]


def facts(
    state: TicketState,
    *,
    tier: Tier = Tier.L1,
    assignee: str | None = None,
    acknowledged: bool = False,
) -> TicketFacts:
    return TicketFacts(id=7, state=state, tier=tier, assignee=assignee, acknowledged=acknowledged)


def refused(ticket: TicketFacts, action: Action, actor: str = "alice") -> str:
    with pytest.raises(ActionError) as caught:
        plan(ticket, action, actor)
    return str(caught.value)


def test_all_states_and_actions_are_covered() -> None:
    assert set(OPEN_STATES + FINISHED_STATES) == set(TicketState)
    assert {type(a) for a in ALL_ACTIONS} == set(Action.__args__)


# --- every action from every state ------------------------------------------------------------

# Where an action takes a ticket from each state (NEW, ACKNOWLEDGED, IN_PROGRESS, REOPENED,
# RESOLVED, CLOSED); None: refused.
Moves = dict[TicketState, TicketState | None]


def moves(
    new: TicketState | None,
    acknowledged: TicketState | None,
    in_progress: TicketState | None,
    reopened: TicketState | None,
    resolved: TicketState | None,
    closed: TicketState | None,
) -> Moves:
    return {
        NEW: new,
        ACKNOWLEDGED: acknowledged,
        IN_PROGRESS: in_progress,
        REOPENED: reopened,
        RESOLVED: resolved,
        CLOSED: closed,
    }


TAKE = moves(ACKNOWLEDGED, ACKNOWLEDGED, IN_PROGRESS, ACKNOWLEDGED, None, None)
START = moves(IN_PROGRESS, IN_PROGRESS, IN_PROGRESS, IN_PROGRESS, None, None)
COMMENT = moves(ACKNOWLEDGED, ACKNOWLEDGED, IN_PROGRESS, ACKNOWLEDGED, RESOLVED, CLOSED)
ESCALATE = moves(NEW, ACKNOWLEDGED, IN_PROGRESS, REOPENED, None, None)
RESOLVE = moves(RESOLVED, RESOLVED, RESOLVED, RESOLVED, None, None)
CLOSE = moves(CLOSED, CLOSED, CLOSED, CLOSED, CLOSED, None)
REOPEN = moves(None, None, None, None, REOPENED, REOPENED)


@pytest.mark.parametrize("state", list(TicketState))
def test_take(state: TicketState) -> None:
    ticket = facts(state, assignee="bob")
    to = TAKE[state]
    if to is None:
        assert refused(ticket, Take()) == f"ticket 7 is {state.label}: reopen it first"
        return
    change = plan(ticket, Take(), "alice")
    assert change == Change(to, "alice", Tier.L1, True, "taken", "taken by alice")


@pytest.mark.parametrize("state", list(TicketState))
def test_assign(state: TicketState) -> None:
    ticket = facts(state)
    to = TAKE[state]
    if to is None:
        assert refused(ticket, Assign("bob")) == f"ticket 7 is {state.label}: reopen it first"
        return
    change = plan(ticket, Assign("bob"), "alice")
    assert change == Change(to, "bob", Tier.L1, True, "assigned", "assigned to bob by alice")


@pytest.mark.parametrize("state", list(TicketState))
def test_start_keeps_the_assignee_or_takes_it(state: TicketState) -> None:
    if START[state] is None:
        assert refused(facts(state), Start()) == f"ticket 7 is {state.label}: reopen it first"
        return
    unassigned = plan(facts(state), Start(), "alice")
    assert (unassigned.state, unassigned.assignee, unassigned.kind) == (
        IN_PROGRESS,
        "alice",
        "started",
    )
    assert unassigned.message == "work in progress (alice)"
    assert unassigned.acknowledge
    assigned = plan(facts(state, assignee="bob"), Start(), "alice")
    assert (assigned.state, assigned.assignee) == (IN_PROGRESS, "bob")
    assert assigned.message == "work in progress (bob)"


@pytest.mark.parametrize("state", list(TicketState))
def test_comment_is_allowed_in_every_state(state: TicketState) -> None:
    change = plan(facts(state, assignee="bob"), Comment("  rebooted, watching it  "), "alice")
    assert change.state is COMMENT[state]
    assert (change.kind, change.message) == ("comment", "rebooted, watching it")
    assert change.assignee == "bob"
    assert change.tier is Tier.L1
    # A comment on an open ticket is a person working it: its first response.
    assert change.acknowledge is state.is_open


@pytest.mark.parametrize("state", list(TicketState))
def test_escalate_goes_up_one_tier_and_unassigns(state: TicketState) -> None:
    ticket = facts(state, tier=Tier.L2, assignee="bob")
    if ESCALATE[state] is None:
        assert refused(ticket, Escalate()) == f"ticket 7 is {state.label}: reopen it first"
        return
    change = plan(ticket, Escalate("needs hands on site"), "alice")
    # Unassigned, an escalated ticket is no longer in progress: it waits to be taken at L3.
    assert change == Change(
        ACKNOWLEDGED if state is IN_PROGRESS else state,
        None,
        Tier.L3,
        False,
        "escalated",
        "escalated by alice: L2 -> L3; unassigned from bob: needs hands on site",
    )
    # Nobody had it: nothing to say about an assignee; no note: nothing after the tiers.
    bare = plan(facts(state), Escalate(), "alice")
    assert (bare.tier, bare.message) == (Tier.L2, "escalated by alice: L1 -> L2")


@pytest.mark.parametrize("state", list(TicketState))
def test_resolve(state: TicketState) -> None:
    ticket = facts(state, assignee="bob")
    if RESOLVE[state] is None:
        assert refused(ticket, Resolve("done")) == f"ticket 7 is {state.label}: nothing to resolve"
        return
    change = plan(ticket, Resolve("  freed 20 GiB  "), "alice")
    assert change == Change(
        RESOLVED, "bob", Tier.L1, True, "resolved", "resolved by alice: freed 20 GiB"
    )


@pytest.mark.parametrize("state", list(TicketState))
def test_close(state: TicketState) -> None:
    ticket = facts(state)
    if CLOSE[state] is None:
        assert refused(ticket, Close()) == "ticket 7 is closed already"
        return
    change = plan(ticket, Close("duplicate of 6"), "alice")
    assert (change.state, change.kind, change.message) == (
        CLOSED,
        "closed",
        "closed by alice: duplicate of 6",
    )
    assert change.acknowledge is state.is_open
    assert plan(ticket, Close(), "alice").message == "closed by alice"


@pytest.mark.parametrize("state", list(TicketState))
def test_reopen(state: TicketState) -> None:
    ticket = facts(state, tier=Tier.L3, assignee="bob", acknowledged=True)
    if REOPEN[state] is None:
        assert refused(ticket, Reopen()) == (
            f"ticket 7 is {state.label}: only a resolved or closed ticket can be reopened"
        )
        return
    change = plan(ticket, Reopen("came back after the update"), "alice")
    # It keeps its tier and assignee; the first response was given long ago.
    assert change == Change(
        REOPENED,
        "bob",
        Tier.L3,
        False,
        "reopened",
        "reopened by alice: came back after the update",
    )


# --- the first-response rule ------------------------------------------------------------------


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("state", list(TicketState))
def test_first_response_only_once(state: TicketState, action: Action) -> None:
    """An acknowledged ticket is never acknowledged again, whatever happens to it."""
    try:
        change = plan(facts(state, acknowledged=True), action, "alice")
    except ActionError:
        return
    assert not change.acknowledge


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("state", FINISHED_STATES)
def test_no_first_response_on_a_finished_ticket(state: TicketState, action: Action) -> None:
    try:
        change = plan(facts(state), action, "alice")
    except ActionError:
        return
    assert not change.acknowledge


@pytest.mark.parametrize(
    "action",
    [Take(), Assign("bob"), Start(), Comment("on it"), Resolve("fixed"), Close()],
    ids=lambda a: type(a).__name__,
)
@pytest.mark.parametrize("state", OPEN_STATES)
def test_a_persons_act_on_an_open_ticket_is_its_first_response(
    state: TicketState, action: Action
) -> None:
    change = plan(facts(state), action, "alice")
    assert change.acknowledge
    # It also stops the first-response clock, which only runs while NEW or REOPENED.
    assert change.state not in (NEW, REOPENED)


@pytest.mark.parametrize("state", [NEW, REOPENED])
def test_escalating_is_no_first_response(state: TicketState) -> None:
    change = plan(facts(state), Escalate(), "alice")
    assert not change.acknowledge
    assert change.state is state  # still waiting for someone at the next tier


def test_reopening_is_no_first_response() -> None:
    for state in FINISHED_STATES:
        change = plan(facts(state), Reopen(), "alice")
        assert (change.state, change.acknowledge) == (REOPENED, False)


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", [Tier.L1, Tier.L2, Tier.L3])
def test_escalate_below_l4(tier: Tier) -> None:
    assert plan(facts(NEW, tier=tier), Escalate(), "alice").tier is Tier(int(tier) + 1)


def test_escalate_at_l4_is_refused() -> None:
    assert refused(facts(IN_PROGRESS, tier=Tier.L4), Escalate()) == (
        "ticket 7 is already at L4, the last tier"
    )


@pytest.mark.parametrize("actor", ["", "   ", "a" * (MAX_NAME + 1), "ali\nce", "bob\x00"])
@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: type(a).__name__)
def test_a_bad_actor_is_refused_for_every_action(action: Action, actor: str) -> None:
    state = RESOLVED if isinstance(action, Reopen) else NEW
    message = refused(facts(state), action, actor)
    assert message.startswith("actor ")


def test_longest_names_are_accepted() -> None:
    longest = "a" * MAX_NAME
    assert plan(facts(NEW), Assign(longest), longest).assignee == longest


@pytest.mark.parametrize(
    ("assignee", "why"),
    [
        ("", "assignee is empty"),
        ("  ", "assignee is empty"),
        ("b" * (MAX_NAME + 1), f"at most {MAX_NAME} characters"),
        ("bob\tsmith", "must be printable"),
    ],
)
def test_a_bad_assignee_is_refused(assignee: str, why: str) -> None:
    assert why in refused(facts(NEW), Assign(assignee))


TEXTS: dict[str, Callable[[str], Action]] = {
    "comment": Comment,
    "resolve": Resolve,
    "escalate": Escalate,
    "close": Close,
    "reopen": Reopen,
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_oversized_texts_are_refused(name: str) -> None:
    action = TEXTS[name]
    state = RESOLVED if name == "reopen" else NEW
    assert plan(facts(state), action("x" * MAX_TEXT), "alice").kind
    message = refused(facts(state), action("x" * (MAX_TEXT + 1)))
    assert f"longer than {MAX_TEXT} characters" in message


@pytest.mark.parametrize("text", ["", " ", "\n\t"])
def test_an_empty_comment_is_refused(text: str) -> None:
    assert refused(facts(ACKNOWLEDGED), Comment(text)) == "comment is empty"


@pytest.mark.parametrize("note", ["", "  ", "\n"])
def test_resolve_needs_a_note(note: str) -> None:
    assert refused(facts(IN_PROGRESS), Resolve(note)) == "resolution note is empty"


@pytest.mark.parametrize("note", ["", "   "])
def test_optional_notes_may_be_empty(note: str) -> None:
    assert plan(facts(NEW), Escalate(note), "alice").message == "escalated by alice: L1 -> L2"
    assert plan(facts(NEW), Close(note), "alice").message == "closed by alice"
    assert plan(facts(CLOSED), Reopen(note), "alice").message == "reopened by alice"


def test_close_of_a_closed_ticket_is_refused() -> None:
    assert refused(facts(CLOSED), Close("again")) == "ticket 7 is closed already"


@pytest.mark.parametrize("state", OPEN_STATES)
def test_reopen_of_an_open_ticket_is_refused(state: TicketState) -> None:
    assert "only a resolved or closed ticket can be reopened" in refused(facts(state), Reopen())
