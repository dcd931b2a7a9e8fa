"""Machine tags (collector/fleet.py `tag`, `valid_tag`) on SQLite and PostgreSQL, and the
tags and stored policy version a hello gets back (`connected`) for its Welcome's policy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from collector import fleet, policies
from collector.fleet import MAX_TAGS, TagError, valid_tag
from collector.store.models import Agent
from collector.store.runner import Store
from remdiag.v1 import common_pb2
from tests.collector.factories import DISK, NOW, enrolled, machine


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def agent_id(store: Store) -> str:
    return store.call(lambda s: enrolled(s).agent_id)


def tag(
    store: Store, agent_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[str]:
    view = store.call(lambda s: fleet.tag(s, agent_id, list(add), list(remove)))
    assert view is not None
    return list(view.agent.tags)


def stored_tags(store: Store, agent_id: str) -> list[str]:
    agent = store.call(lambda s: s.get(Agent, agent_id))
    assert agent is not None
    return list(agent.tags)


def test_a_new_machine_has_no_tags(store: Store, agent_id: str) -> None:
    assert stored_tags(store, agent_id) == []


def test_add_keeps_tags_sorted_and_stored(store: Store, agent_id: str) -> None:
    assert tag(store, agent_id, add=["vip", "finance", "server"]) == ["finance", "server", "vip"]
    assert tag(store, agent_id, add=["lab"]) == ["finance", "lab", "server", "vip"]
    assert stored_tags(store, agent_id) == ["finance", "lab", "server", "vip"]


def test_adding_and_removing_is_idempotent(store: Store, agent_id: str) -> None:
    tag(store, agent_id, add=["vip", "lab"])
    assert tag(store, agent_id, add=["vip", "vip"]) == ["lab", "vip"]
    assert tag(store, agent_id, remove=["lab"]) == ["vip"]
    assert tag(store, agent_id, remove=["lab", "never-there"]) == ["vip"]
    assert tag(store, agent_id) == ["vip"]
    assert stored_tags(store, agent_id) == ["vip"]


def test_add_then_remove_in_one_call(store: Store, agent_id: str) -> None:
    tag(store, agent_id, add=["lab"])
    # Removal wins over an addition of the same tag: removing is applied last.
    assert tag(store, agent_id, add=["vip", "x"], remove=["lab", "x"]) == ["vip"]


def test_the_view_counts_open_tickets(store: Store, agent_id: str) -> None:
    view = store.call(lambda s: fleet.tag(s, agent_id, ["vip"], []))
    assert view is not None
    assert (view.agent.id, view.open_tickets) == (agent_id, 0)


@pytest.mark.parametrize(
    "good", ["vip", "a", "0day", "finance-2", "site.paris", "team_a", "a" * 64]
)
def test_valid_tags(good: str) -> None:
    assert valid_tag(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "VIP", "Vip", "-lab", "+vip", ".x", "_x", "a b", "a" * 65, "café", "vip\n", "a/b"],
)
def test_bad_tags_are_refused(store: Store, agent_id: str, bad: str) -> None:
    with pytest.raises(TagError, match="lowercase letters"):
        valid_tag(bad)
    tag(store, agent_id, add=["vip"])
    for add, remove in (([bad], []), ([], [bad]), (["lab", bad], [])):
        with pytest.raises(TagError):
            tag(store, agent_id, add, remove)
    assert stored_tags(store, agent_id) == ["vip"]


def test_at_most_max_tags(store: Store, agent_id: str) -> None:
    full = [f"t{i:02d}" for i in range(MAX_TAGS)]
    assert tag(store, agent_id, add=full) == sorted(full)
    with pytest.raises(TagError, match=f"at most {MAX_TAGS} tags"):
        tag(store, agent_id, add=["one-more"])
    assert stored_tags(store, agent_id) == sorted(full)
    # Adding one it has, or swapping one for another, stays within the bound.
    assert tag(store, agent_id, add=["t00"]) == sorted(full)
    swapped = tag(store, agent_id, add=["one-more"], remove=["t00"])
    assert len(swapped) == MAX_TAGS and "one-more" in swapped and "t00" not in swapped


def test_too_many_at_once(store: Store, agent_id: str) -> None:
    with pytest.raises(TagError):
        tag(store, agent_id, add=[f"t{i}" for i in range(MAX_TAGS + 1)])
    assert stored_tags(store, agent_id) == []


def test_unknown_agent_is_none(store: Store, agent_id: str) -> None:
    assert store.call(lambda s: fleet.tag(s, "no-such-agent", ["vip"], [])) is None
    # A bad tag is refused before the agent is looked up.
    with pytest.raises(TagError):
        store.call(lambda s: fleet.tag(s, "no-such-agent", ["VIP"], []))


def test_connecting_returns_the_tags_and_the_welcome_policy_matches_policy_for(
    store: Store, agent_id: str
) -> None:
    """The Welcome's policy is built from what `connected` returns, not a second read of the
    machine's row; it must be the policy `policy_for` gives, and store that version."""
    tag(store, agent_id, add=["finance"])
    documents = [
        {"name": "fin", "target": {"tags": ["finance"]}, "checks": {DISK: {"enabled": False}}}
    ]
    store.call(
        lambda s: policies.apply(s, [policies.parse(d) for d in documents], "admin", NOW, {})
    )
    store.call(lambda s: s.execute(update(Agent).values(policy_version=0)))  # as if never set

    def welcome(s: Session) -> tuple[fleet.Connection, common_pb2.Policy]:
        connection = fleet.connected(s, agent_id, machine(), NOW)
        return connection, policies.policy_on_connect(
            s, agent_id, connection.tags, connection.policy_version, {}
        )

    connection, policy = store.call(welcome)
    assert (connection.tags, connection.policy_version) == (("finance",), 0)
    assert policy == store.call(lambda s: policies.policy_for(s, agent_id, {}))
    assert [(c.check_id, c.disabled) for c in policy.checks] == [(DISK, True)]
    stored = store.call(lambda s: s.get(Agent, agent_id))
    assert stored is not None and stored.policy_version == policy.version
    # Known now: the next hello returns it, and the policy is the same.
    again, policy_again = store.call(welcome)
    assert again.policy_version == policy.version and policy_again == policy
