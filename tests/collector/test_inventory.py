"""store_inventory: a full inventory replaces, a diff merges, each sequence applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector import convert, fleet
from collector.fleet import InventoryUpdate
from collector.store.models import Agent, AgentInventory
from collector.store.runner import Store
from remdiag.v1 import agent_pb2
from tests.collector.factories import NOW


def test_full_replaces_diff_merges_and_resends_change_nothing(store_url: str) -> None:
    store = Store(store_url)
    try:
        machine = fleet.MachineInfo(hostname="pc-7", machine_id="m-7")
        agent_id = store.call(lambda s: fleet.enroll(s, machine, NOW)).agent_id

        def apply(sequence: int, update: InventoryUpdate) -> int:
            return store.call(
                lambda s: fleet.store_inventory(s, agent_id, sequence, lambda: update, NOW)
            )

        def inventory() -> dict[str, object] | None:
            return store.call(lambda s: s.get(AgentInventory, agent_id).facts)  # type: ignore[union-attr]

        full = {"cpu": {"model": "x"}, "software": {"packages": 10}, "old": {"a": 1}}
        assert apply(1, InventoryUpdate(full, full=True)) == 1
        assert inventory() == full

        apply(2, InventoryUpdate({"software": {"packages": 11}}, full=False, removed=("old",)))
        assert inventory() == {"cpu": {"model": "x"}, "software": {"packages": 11}}

        # A resend of sequence 1 is acked but does not roll the inventory back.
        assert apply(1, InventoryUpdate(full, full=True)) == 2
        assert inventory() == {"cpu": {"model": "x"}, "software": {"packages": 11}}

        apply(3, InventoryUpdate({"cpu": {"model": "y"}}, full=True))
        assert inventory() == {"cpu": {"model": "y"}}
    finally:
        store.close()


def test_the_same_full_inventory_again_is_acked_without_decoding(store_url: str) -> None:
    """Agents send their full inventory on every connect; what the store holds is not redone."""
    store = Store(store_url)
    try:
        machine = fleet.MachineInfo(hostname="pc-8", machine_id="m-8")
        agent_id = store.call(lambda s: fleet.enroll(s, machine, NOW)).agent_id
        decoded: list[int] = []

        def apply(sequence: int, update: InventoryUpdate, digest: str | None, at: datetime) -> int:
            def read() -> InventoryUpdate:
                decoded.append(sequence)
                return update

            return store.call(
                lambda s: fleet.store_inventory(s, agent_id, sequence, read, at, digest)
            )

        def stored() -> tuple[dict[str, object] | None, str | None, datetime | None]:
            def read(s: Session) -> tuple[dict[str, object] | None, str | None, datetime | None]:
                row = s.get(AgentInventory, agent_id)
                assert row is not None
                return row.facts, row.digest, row.received_at

            return store.call(read)

        full = {"cpu": {"model": "x"}}
        later = NOW + timedelta(hours=1)
        assert apply(1, InventoryUpdate(full, full=True), "d1", NOW) == 1
        assert apply(2, InventoryUpdate({"cpu": {"model": "ignored"}}, full=True), "d1", later) == 2
        assert decoded == [1]
        # A resend of the same inventory is acked through the latest sequence, not its own.
        assert apply(1, InventoryUpdate(full, full=True), "d1", later) == 2
        last = store.call(
            lambda s: s.scalar(select(Agent.last_sequence).where(Agent.id == agent_id))
        )
        assert last == 2 and decoded == [1]
        with pytest.raises(LookupError):
            apply_to = partial(fleet.store_inventory, agent_id="no-such-agent", digest="d1")
            store.call(
                lambda s: apply_to(s, sequence=9, read=lambda: InventoryUpdate(full, True), now=NOW)
            )
        inventory, digest, at = stored()
        assert (inventory, digest) == (full, "d1")
        assert at is not None and at.replace(tzinfo=UTC) == later  # confirmed now

        # A diff changes the inventory: the digest no longer names it, so the next full is read.
        apply(3, InventoryUpdate({"disk": {"free": 1}}, full=False), None, later)
        assert stored()[1] is None
        assert apply(4, InventoryUpdate(full, full=True), "d1", later) == 4
        assert decoded == [1, 3, 4]
        assert stored()[:2] == (full, "d1")
    finally:
        store.close()


def test_inventory_digest_names_the_facts_whatever_their_order() -> None:
    first, second = agent_pb2.Inventory(full=True), agent_pb2.Inventory(full=True)
    first.facts.update({"cpu": {"cores": 4, "model": "x"}, "os": {"name": "Ubuntu"}})
    second.facts.update({"os": {"name": "Ubuntu"}, "cpu": {"model": "x", "cores": 4}})
    second.collected_at.seconds = 1_700_000_000  # when it was gathered does not count
    assert convert.inventory_digest(first) == convert.inventory_digest(second)
    second.facts["os"]["name"] = "Fedora"
    assert convert.inventory_digest(first) != convert.inventory_digest(second)
    assert convert.inventory_digest(agent_pb2.Inventory(full=False)) is None
