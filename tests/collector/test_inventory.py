"""store_inventory: a full inventory replaces, a diff merges, each sequence applied once."""

from __future__ import annotations

from collector import fleet
from collector.fleet import InventoryUpdate
from collector.store.models import Agent
from collector.store.runner import Store
from tests.collector.factories import NOW


def test_full_replaces_diff_merges_and_resends_change_nothing(store_url: str) -> None:
    store = Store(store_url)
    try:
        machine = fleet.MachineInfo(hostname="pc-7", machine_id="m-7")
        agent_id = store.call(lambda s: fleet.enroll(s, machine, NOW)).agent_id

        def apply(sequence: int, update: InventoryUpdate) -> int:
            return store.call(lambda s: fleet.store_inventory(s, agent_id, sequence, update, NOW))

        def inventory() -> dict[str, object] | None:
            return store.call(lambda s: s.get(Agent, agent_id).inventory)  # type: ignore[union-attr]

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
