"""The security gatherers on this very machine: plausible facts, or Unavailable saying why."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from agent.facts.live import LiveFacts
from agent.facts.models import Unavailable
from agent.facts.security import linux
from agent.facts.security.models import (
    AntivirusFacts,
    DiskEncryptionFacts,
    EncryptionState,
    FirewallFacts,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux gatherers")

FIREWALL_TOOLS = ("ufw", "nft", "iptables", "iptables-legacy")


@pytest.fixture(scope="module")
def live() -> LiveFacts:
    return LiveFacts()


def test_firewall_answers_or_says_why_for_every_tool(live: LiveFacts) -> None:
    facts = live.firewall()
    if isinstance(facts, FirewallFacts):
        assert facts.backend in ("ufw", "nftables", "iptables", "iptables-legacy")
        assert facts.detail
        assert not facts.filters_inbound or facts.enabled
        return
    assert facts.reason.startswith("no firewall tool could be asked: ")
    for tool in FIREWALL_TOOLS:
        assert tool in facts.reason
        if shutil.which(tool) is None:
            assert f"{tool} is not installed" in facts.reason


@pytest.mark.skipif(
    any(shutil.which(tool) for tool in FIREWALL_TOOLS), reason="a firewall tool is installed"
)
def test_in_this_container_no_firewall_tool_is_installed(live: LiveFacts) -> None:
    assert live.firewall() == Unavailable(
        "no firewall tool could be asked: ufw is not installed; nft is not installed; "
        "iptables is not installed; iptables-legacy is not installed"
    )


def test_antivirus_reports_what_it_looked_for(live: LiveFacts) -> None:
    facts = live.antivirus()
    assert isinstance(facts, AntivirusFacts)
    assert not facts.complete
    assert facts.looked_for and "ClamAV" in facts.looked_for[0]
    for product in facts.products:
        assert product.name and product.source
        assert product.definitions_age_days is None or product.definitions_age_days >= 0


def test_disk_encryption_of_the_root_filesystem(live: LiveFacts, tmp_path: Path) -> None:
    facts = live.disk_encryption([str(tmp_path), str(tmp_path / "missing")])
    if isinstance(facts, Unavailable):
        assert facts.reason  # lsblk missing, say
        return
    assert isinstance(facts, DiskEncryptionFacts)
    assert f"{tmp_path / 'missing'}: no such file or directory" in facts.errors
    root = [v for v in facts.volumes if v.mountpoint == "/"]
    if not root:
        # A container overlay: said, not hidden.
        assert any(e.startswith("/: ") for e in facts.errors)
        return
    (volume,) = root
    assert volume.system and volume.device
    assert volume.state in (EncryptionState.ENCRYPTED, EncryptionState.NOT_ENCRYPTED)
    assert (volume.method != "") == (volume.state is EncryptionState.ENCRYPTED)


def test_root_device_agrees_with_the_kernels_device_number(live: LiveFacts) -> None:
    facts = live.disk_encryption(())
    if isinstance(facts, Unavailable) or not facts.volumes:
        pytest.skip("/ is not on a block device lsblk lists here")
    devices = linux._block_devices(Path("/proc/self/mountinfo").read_text())
    assert not isinstance(devices, Unavailable)
    (device,) = [d for d in devices if d.name == facts.volumes[0].device]
    st_dev = os.stat("/").st_dev
    if device.majmin and os.major(st_dev) != 0:  # btrfs reports an anonymous device
        assert device.majmin == f"{os.major(st_dev)}:{os.minor(st_dev)}"


def test_lsblk_runs_again_only_when_the_mounts_change(live: LiveFacts) -> None:
    first = live.disk_encryption(())
    if isinstance(first, Unavailable):
        pytest.skip(first.reason)
    cached = linux._lsblk_cache.get("lsblk")
    assert cached is not None
    assert live.disk_encryption(()) == first
    assert linux._lsblk_cache["lsblk"] is cached


def test_security_inventory_is_plain_json(live: LiveFacts) -> None:
    inventory = live.security_inventory()
    assert set(inventory) == {"firewall", "antivirus", "disk_encryption"}
    assert json.loads(json.dumps(inventory)) == inventory
    for section in inventory.values():
        assert isinstance(section, dict)
        assert "unavailable" not in section or section["unavailable"]
