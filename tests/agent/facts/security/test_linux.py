"""Linux security parsers on recorded ufw, nft, iptables, lsblk and mountinfo outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.facts.models import Unavailable
from agent.facts.security import linux
from agent.facts.security.models import EncryptionState, FirewallFacts, VolumeEncryption

FIXTURES = Path(__file__).parents[3] / "fixtures" / "security"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- ufw ---------------------------------------------------------------------------------------


def test_ufw_active_with_default_deny_filters_inbound() -> None:
    facts = linux.parse_ufw_status(fixture("ufw_status_active.txt"))
    assert facts == FirewallFacts("ufw", True, True, "active, default deny (incoming)")


def test_ufw_inactive_is_off() -> None:
    facts = linux.parse_ufw_status(fixture("ufw_status_inactive.txt"))
    assert facts == FirewallFacts("ufw", False, False, "inactive")


def test_ufw_active_allowing_everything_in_does_not_filter() -> None:
    facts = linux.parse_ufw_status(fixture("ufw_status_allow_incoming.txt"))
    assert isinstance(facts, FirewallFacts)
    assert facts.enabled and not facts.filters_inbound
    assert facts.detail == "active, default allow (incoming)"


def test_ufw_allowing_by_default_but_denying_some_ports_filters() -> None:
    text = fixture("ufw_status_allow_incoming.txt") + (
        "\nTo                         Action      From\n"
        "--                         ------      ----\n"
        "445/tcp                    DENY IN     Anywhere\n"
    )
    facts = linux.parse_ufw_status(text)
    assert isinstance(facts, FirewallFacts) and facts.filters_inbound
    assert facts.detail == "active, default allow (incoming), 1 deny/reject rule"


def test_ufw_without_a_status_line_is_unavailable() -> None:
    assert isinstance(linux.parse_ufw_status("ERROR: problem running"), Unavailable)


# --- nftables ----------------------------------------------------------------------------------


def test_nft_input_policy_drop_filters() -> None:
    facts = linux.parse_nft_ruleset(fixture("nft_ruleset_policy_drop.json"))
    assert isinstance(facts, FirewallFacts)
    assert facts.backend == "nftables" and facts.enabled and facts.filters_inbound
    assert facts.detail == "inet filter input: policy drop"


def test_nft_firewalld_rejects_through_jumps_and_verdict_maps() -> None:
    facts = linux.parse_nft_ruleset(fixture("nft_ruleset_firewalld.json"))
    assert isinstance(facts, FirewallFacts) and facts.filters_inbound
    # The invalid-state drop in the verdict map and the final reject.
    assert facts.detail == "inet firewalld filter_INPUT: 2 drop/reject rules"


def test_nft_docker_forward_drop_does_not_protect_this_machine() -> None:
    facts = linux.parse_nft_ruleset(fixture("nft_ruleset_docker_only.json"))
    assert isinstance(facts, FirewallFacts)
    assert facts.enabled and not facts.filters_inbound
    assert facts.detail == "ip nat PREROUTING, ip filter INPUT: accept everything"


def test_nft_empty_ruleset_is_off() -> None:
    facts = linux.parse_nft_ruleset(fixture("nft_ruleset_empty.json"))
    assert facts == FirewallFacts("nftables", False, False, "empty ruleset")


@pytest.mark.parametrize("text", ["", "not json", '{"other": []}', "[]"])
def test_nft_unexpected_output_is_unavailable(text: str) -> None:
    assert isinstance(linux.parse_nft_ruleset(text), Unavailable)


# --- iptables ----------------------------------------------------------------------------------


def test_iptables_written_by_ufw_filters() -> None:
    facts = linux.parse_iptables_rules(fixture("iptables_ufw.txt"))
    assert facts == FirewallFacts(
        "iptables", True, True, "INPUT policy DROP, 1 DROP/REJECT rule on INPUT"
    )


def test_iptables_reject_rule_filters_and_output_drops_do_not_count() -> None:
    facts = linux.parse_iptables_rules(fixture("iptables_reject_rule.txt"), "iptables-legacy")
    assert facts == FirewallFacts("iptables-legacy", True, True, "1 DROP/REJECT rule on INPUT")


def test_iptables_accepting_everything_without_rules_is_off() -> None:
    facts = linux.parse_iptables_rules(fixture("iptables_accept_all.txt"))
    assert facts == FirewallFacts("iptables", False, False, "no rules")


def test_iptables_without_input_chain_is_unavailable() -> None:
    assert isinstance(
        linux.parse_iptables_rules("# Warning: iptables-legacy tables present"), Unavailable
    )


# --- several backends --------------------------------------------------------------------------


def test_the_backend_that_filters_wins_and_the_others_are_kept() -> None:
    answers: list[tuple[str, FirewallFacts | Unavailable]] = [
        ("ufw", FirewallFacts("ufw", False, False, "inactive")),
        ("nftables", linux.parse_nft_ruleset(fixture("nft_ruleset_firewalld.json"))),
    ]
    facts = linux.combine_firewall_answers(answers)
    assert isinstance(facts, FirewallFacts)
    assert facts.backend == "nftables" and facts.filters_inbound
    assert facts.others == ("ufw: inactive",)


def test_when_nothing_filters_the_first_answer_is_reported() -> None:
    answers: list[tuple[str, FirewallFacts | Unavailable]] = [
        ("ufw", Unavailable("ufw is not installed")),
        ("nftables", FirewallFacts("nftables", False, False, "empty ruleset")),
        ("iptables", FirewallFacts("iptables", False, False, "no rules")),
    ]
    facts = linux.combine_firewall_answers(answers)
    assert isinstance(facts, FirewallFacts)
    assert (facts.backend, facts.enabled, facts.filters_inbound) == ("nftables", False, False)
    assert facts.others == ("ufw is not installed", "iptables: no rules")


def test_no_backend_answering_is_unavailable_with_every_reason() -> None:
    answers: list[tuple[str, FirewallFacts | Unavailable]] = [
        ("ufw", Unavailable("ufw exited with 1: ERROR: You need to be root to run this script")),
        ("nftables", Unavailable("nft exited with 1: Operation not permitted")),
    ]
    facts = linux.combine_firewall_answers(answers)
    assert facts == Unavailable(
        "no firewall tool could be asked: ufw exited with 1: ERROR: You need to be root to run "
        "this script; nft exited with 1: Operation not permitted"
    )


# --- disk encryption ---------------------------------------------------------------------------


def devices(name: str) -> tuple[linux.BlockDevice, ...]:
    parsed = linux.parse_lsblk(fixture(name))
    assert not isinstance(parsed, Unavailable)
    return parsed


def judge(lsblk: str, mountinfo: str, path: str) -> VolumeEncryption | str:
    mount = linux.owning_mount(path, linux.parse_mountinfo(fixture(mountinfo)))
    assert mount is not None
    return linux.volume_encryption(mount, devices(lsblk), system=path == "/")


def test_lsblk_tree_keeps_each_devices_ancestors() -> None:
    found = {d.name: d for d in devices("lsblk_ubuntu_luks_lvm.json")}
    root = found["ubuntu--vg-ubuntu--lv"]
    assert root.mountpoints == ("/",)
    assert [d.name for d in root.ancestors] == ["dm_crypt-0", "nvme0n1p3", "nvme0n1"]
    assert found["nvme0n1"].mountpoints == ()


def test_root_on_lvm_on_luks_is_encrypted() -> None:
    volume = judge("lsblk_ubuntu_luks_lvm.json", "mountinfo_ubuntu_luks_lvm.txt", "/")
    assert volume == VolumeEncryption(
        "/",
        "ubuntu--vg-ubuntu--lv",
        EncryptionState.ENCRYPTED,
        "LUKS",
        percent_encrypted=100.0,
        system=True,
        detail="ubuntu--vg-ubuntu--lv on LUKS device dm_crypt-0",
    )


def test_a_path_is_judged_by_the_mount_holding_it() -> None:
    volume = judge("lsblk_ubuntu_luks_lvm.json", "mountinfo_ubuntu_luks_lvm.txt", "/data/projects")
    assert isinstance(volume, VolumeEncryption)
    assert (volume.mountpoint, volume.device, volume.state) == (
        "/data",
        "sda1",
        EncryptionState.NOT_ENCRYPTED,
    )
    assert volume.detail == "sda1 on sda: no crypt device"


def test_the_boot_partition_beside_luks_is_not_encrypted() -> None:
    volume = judge("lsblk_ubuntu_luks_lvm.json", "mountinfo_ubuntu_luks_lvm.txt", "/boot/efi")
    assert isinstance(volume, VolumeEncryption)
    assert volume.state is EncryptionState.NOT_ENCRYPTED and volume.device == "nvme0n1p1"


def test_a_network_share_cannot_be_judged() -> None:
    why = judge("lsblk_ubuntu_luks_lvm.json", "mountinfo_ubuntu_luks_lvm.txt", "/mnt/nas/docs")
    assert why == (
        "/mnt/nas: cifs filesystem from //nas.example.com/share, on no block device lsblk "
        "lists (a container overlay, a network share, ZFS?)"
    )


def test_mountinfo_escapes_are_decoded() -> None:
    mounts = linux.parse_mountinfo(fixture("mountinfo_ubuntu_luks_lvm.txt"))
    assert "/run/user/1000/My Files" in [m.mountpoint for m in mounts]
    root = linux.owning_mount("/", mounts)
    assert root == linux.Mount("/", "253:1", "ext4", "/dev/mapper/ubuntu--vg-ubuntu--lv")


def test_btrfs_subvolumes_on_luks_are_found_by_mount_point() -> None:
    for path in ("/", "/home/alice"):
        volume = judge("lsblk_fedora_btrfs_luks.json", "mountinfo_fedora_btrfs_luks.txt", path)
        assert isinstance(volume, VolumeEncryption)
        assert volume.state is EncryptionState.ENCRYPTED and volume.method == "LUKS"
        assert volume.device.startswith("luks-")


def test_old_lsblk_with_single_mountpoint_column() -> None:
    found = devices("lsblk_old_mountpoint.json")
    mount = linux.Mount("/", "8:1", "ext4", "/dev/sda1")
    volume = linux.volume_encryption(mount, found, system=True)
    assert isinstance(volume, VolumeEncryption)
    assert (volume.device, volume.state, volume.system) == (
        "sda1",
        EncryptionState.NOT_ENCRYPTED,
        True,
    )


def test_a_bind_mount_is_matched_by_device_number() -> None:
    mounts = linux.parse_mountinfo(fixture("mountinfo_docker_overlay.txt"))
    data = linux.owning_mount("/data/reports", mounts)
    assert data is not None and data.mountpoint == "/data"
    volume = linux.volume_encryption(data, devices("lsblk_docker_container.json"))
    assert isinstance(volume, VolumeEncryption) and volume.device == "sda1"


def test_a_container_overlay_root_cannot_be_judged() -> None:
    mounts = linux.parse_mountinfo(fixture("mountinfo_docker_overlay.txt"))
    root = linux.owning_mount("/", mounts)
    assert root is not None
    why = linux.volume_encryption(root, devices("lsblk_docker_container.json"), system=True)
    assert isinstance(why, str) and why.startswith("/: overlay filesystem from overlay, on no")


@pytest.mark.parametrize("text", ["", "{", '{"devices": []}'])
def test_lsblk_unexpected_output_is_unavailable(text: str) -> None:
    assert isinstance(linux.parse_lsblk(text), Unavailable)
