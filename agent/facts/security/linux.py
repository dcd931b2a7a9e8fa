"""Linux security facts: firewall (ufw, nftables, iptables), LUKS disk encryption, AV agents.

Parsers are pure functions of a tool's text output, tested on recorded outputs; the gatherers
below them run the tools through agent.facts.command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.facts.command import read_text, run_command
from agent.facts.models import Unavailable
from agent.facts.security.models import (
    AntivirusProduct,
    DiskEncryptionFacts,
    EncryptionState,
    FirewallFacts,
    VolumeEncryption,
)

TOOL_TIMEOUT_S = 10.0

# --- firewall ----------------------------------------------------------------------------------


def parse_ufw_status(text: str) -> FirewallFacts | Unavailable:
    """`ufw status verbose`: active or not, and the default policy for incoming traffic."""
    status = re.search(r"^Status:\s*(\w+)", text, re.MULTILINE)
    if status is None:
        return Unavailable("ufw status printed no 'Status:' line")
    if status.group(1).lower() != "active":
        return FirewallFacts("ufw", enabled=False, filters_inbound=False, detail="inactive")
    default = re.search(r"^Default:.*?(\w+) \(incoming\)", text, re.MULTILINE)
    # Rule lines read "22/tcp  DENY IN  Anywhere" (verbose) or "22/tcp  DENY  Anywhere".
    denying = re.findall(r"\s(?:DENY|REJECT)(?: IN)?\s", text)
    if default is None:
        # Plain `ufw status` does not print the default; ufw's own default is deny.
        return FirewallFacts("ufw", True, True, "active (default incoming policy not shown)")
    incoming = default.group(1).lower()
    filters = incoming in ("deny", "reject") or bool(denying)
    detail = f"active, default {incoming} (incoming)"
    if incoming == "allow" and denying:
        detail += f", {len(denying)} deny/reject rule{'s' if len(denying) > 1 else ''}"
    return FirewallFacts("ufw", True, filters, detail)


_INBOUND_HOOKS = frozenset({"input", "prerouting", "ingress"})
_INBOUND_FAMILIES = frozenset({"ip", "ip6", "inet", "netdev", "bridge"})


def _nft_verdicts(node: Any) -> Iterator[tuple[str, str | None]]:
    """(verdict, jump target) pairs anywhere in a rule's expressions, verdict maps included."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("drop", "reject"):
                yield key, None
            elif key in ("jump", "goto") and isinstance(value, Mapping):
                target = value.get("target")
                if isinstance(target, str):
                    yield key, target
            else:
                yield from _nft_verdicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nft_verdicts(item)


def parse_nft_ruleset(text: str) -> FirewallFacts | Unavailable:
    """`nft -j list ruleset`: does any chain hooked on inbound traffic drop or reject?

    A base chain hooked on input (or prerouting/ingress) filters when its policy is drop, or
    when it, or a chain it jumps to, has a rule ending in drop or reject (verdict maps count).
    Forward and output chains (Docker's, say) do not protect this machine and are ignored.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Unavailable(f"nft printed JSON that does not parse: {exc}")
    items = document.get("nftables") if isinstance(document, Mapping) else None
    if not isinstance(items, list):
        return Unavailable("nft printed JSON without an 'nftables' list")
    chains: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Any]] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if isinstance(chain := item.get("chain"), Mapping):
            key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
            chains[key] = chain
        elif isinstance(rule := item.get("rule"), Mapping):
            key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
            rules.setdefault(key, []).append(rule.get("expr", []))
    inbound = [
        key
        for key, chain in chains.items()
        if chain.get("hook") in _INBOUND_HOOKS and key[0] in _INBOUND_FAMILIES
    ]
    if not inbound:
        detail = "no chain hooked on input" if chains else "empty ruleset"
        return FirewallFacts("nftables", enabled=bool(chains), filters_inbound=False, detail=detail)
    found: list[str] = []
    for family, table, name in inbound:
        where = f"{family} {table} {name}"
        if str(chains[(family, table, name)].get("policy", "accept")) == "drop":
            found.append(f"{where}: policy drop")
        blocking = _blocking_rules(rules, family, table, name)
        if blocking:
            found.append(f"{where}: {blocking} drop/reject rule{'s' if blocking > 1 else ''}")
    if not found:
        names = ", ".join(" ".join(key) for key in inbound)
        return FirewallFacts("nftables", True, False, f"{names}: accept everything")
    return FirewallFacts("nftables", True, True, "; ".join(found))


def _blocking_rules(
    rules: Mapping[tuple[str, str, str], list[Any]], family: str, table: str, start: str
) -> int:
    """Drop/reject rules in `start` and in the chains reachable from it by jump or goto."""
    seen: set[str] = set()
    pending = [start]
    count = 0
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for expr in rules.get((family, table, name), []):
            for verdict, target in _nft_verdicts(expr):
                if target is not None:
                    pending.append(target)
                elif verdict in ("drop", "reject"):
                    count += 1
    return count


def parse_iptables_rules(text: str, backend: str = "iptables") -> FirewallFacts | Unavailable:
    """`iptables -S` (filter table): INPUT's policy, and drop/reject rules reachable from INPUT."""
    policies: dict[str, str] = {}
    edges: dict[str, list[str]] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError:  # an unbalanced quote in a comment
            words = line.split()
        if len(words) >= 3 and words[0] == "-P":
            policies[words[1]] = words[2]
        elif len(words) >= 2 and words[0] == "-A":
            target = _jump_target(words)
            if target is not None:
                edges.setdefault(words[1], []).append(target)
    if "INPUT" not in policies:
        return Unavailable(f"{backend} -S printed no INPUT chain")
    seen: set[str] = set()
    pending = ["INPUT"]
    blocking = 0
    while pending:
        chain = pending.pop()
        if chain in seen:
            continue
        seen.add(chain)
        for target in edges.get(chain, []):
            if target in ("DROP", "REJECT"):
                blocking += 1
            elif target not in ("ACCEPT", "RETURN", "LOG", "QUEUE", "NFQUEUE"):
                pending.append(target)
    policy = policies["INPUT"]
    found = []
    if policy == "DROP":
        found.append("INPUT policy DROP")
    if blocking:
        found.append(f"{blocking} DROP/REJECT rule{'s' if blocking > 1 else ''} on INPUT")
    rule_count = sum(1 for line in lines if line.startswith("-A "))
    if found:
        return FirewallFacts(backend, True, True, ", ".join(found))
    detail = f"INPUT policy {policy}, nothing dropped" if rule_count else "no rules"
    return FirewallFacts(backend, enabled=rule_count > 0, filters_inbound=False, detail=detail)


def _jump_target(words: Sequence[str]) -> str | None:
    for flag in ("-j", "--jump", "-g", "--goto"):
        if flag in words:
            index = words.index(flag)
            if index + 1 < len(words):
                return words[index + 1]
    return None


_FIREWALL_BACKENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ufw", ("ufw", "status", "verbose")),
    ("nftables", ("nft", "-j", "list", "ruleset")),
    ("iptables", ("iptables", "-S")),
    ("iptables-legacy", ("iptables-legacy", "-S")),
)


def _parse_backend(name: str, text: str) -> FirewallFacts | Unavailable:
    if name == "ufw":
        return parse_ufw_status(text)
    if name == "nftables":
        return parse_nft_ruleset(text)
    return parse_iptables_rules(text, name)


def combine_firewall_answers(
    answers: Sequence[tuple[str, FirewallFacts | Unavailable]],
) -> FirewallFacts | Unavailable:
    """One verdict from every backend asked: the first that filters inbound, else the first
    that answered at all; Unavailable (with every reason) when none answered."""
    said = [_said(name, answer) for name, answer in answers]
    answered = [(i, a) for i, (_, a) in enumerate(answers) if isinstance(a, FirewallFacts)]
    if not answered:
        return Unavailable("no firewall tool could be asked: " + "; ".join(said))
    chosen, facts = next(((i, a) for i, a in answered if a.filters_inbound), answered[0])
    others = tuple(text for i, text in enumerate(said) if i != chosen)
    return FirewallFacts(
        facts.backend, facts.enabled, facts.filters_inbound, facts.detail, facts.profiles, others
    )


def _said(name: str, answer: FirewallFacts | Unavailable) -> str:
    if isinstance(answer, Unavailable):
        # run_command's reasons already start with the program's name ("nft is not installed").
        return answer.reason
    return f"{name}: {answer.detail}"


def firewall() -> FirewallFacts | Unavailable:
    """Ask ufw, nftables, iptables and iptables-legacy in turn, stopping at the first that
    filters inbound traffic (ufw and firewalld are front ends; the kernel's rules decide)."""
    answers: list[tuple[str, FirewallFacts | Unavailable]] = []
    for name, argv in _FIREWALL_BACKENDS:
        output = run_command(argv, TOOL_TIMEOUT_S)
        answer = output if isinstance(output, Unavailable) else _parse_backend(name, output.stdout)
        answers.append((name, answer))
        if isinstance(answer, FirewallFacts) and answer.filters_inbound:
            break
    return combine_firewall_answers(answers)


# --- disk encryption ---------------------------------------------------------------------------

LSBLK_COLUMNS = "NAME,TYPE,FSTYPE,MAJ:MIN,MOUNTPOINTS"
LSBLK_COLUMNS_OLD = "NAME,TYPE,FSTYPE,MAJ:MIN,MOUNTPOINT"
"""util-linux before 2.37 has no MOUNTPOINTS column (all mount points of a device)."""


@dataclass(frozen=True)
class BlockDevice:
    """A node of lsblk's tree, with the chain of devices it sits on."""

    name: str
    type: str
    fstype: str
    majmin: str
    mountpoints: tuple[str, ...]
    ancestors: tuple[BlockDevice, ...] = ()
    """Devices it sits on, nearest first: the LVM volume, the crypt mapping, the partition..."""


def parse_lsblk(text: str) -> tuple[BlockDevice, ...] | Unavailable:
    """`lsblk -J -o NAME,TYPE,FSTYPE,MAJ:MIN,MOUNTPOINTS` (or MOUNTPOINT): every device, each
    with its ancestors (lsblk nests children under the devices they sit on)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Unavailable(f"lsblk printed JSON that does not parse: {exc}")
    roots = document.get("blockdevices") if isinstance(document, Mapping) else None
    if not isinstance(roots, list):
        return Unavailable("lsblk printed JSON without 'blockdevices'")
    return tuple(_walk(roots, ()))


def _walk(nodes: Iterable[Any], ancestors: tuple[BlockDevice, ...]) -> Iterator[BlockDevice]:
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        mounts = node.get("mountpoints", node.get("mountpoint"))
        if not isinstance(mounts, list):
            mounts = [mounts]
        device = BlockDevice(
            name=str(node.get("name", "")),
            type=str(node.get("type") or ""),
            fstype=str(node.get("fstype") or ""),
            majmin=str(node.get("maj:min") or ""),
            mountpoints=tuple(str(m) for m in mounts if m),
            ancestors=ancestors,
        )
        yield device
        yield from _walk(node.get("children") or (), (device, *ancestors))


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    majmin: str
    fstype: str
    source: str


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """/proc/self/mountinfo: mount point, device number, filesystem type and source."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields = before.split()
        rest = after.split()
        if not sep or len(fields) < 5 or len(rest) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), fields[2], rest[0], _unescape(rest[1])))
    return tuple(mounts)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def owning_mount(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount holding `path` (an absolute, resolved path): the longest mount-point prefix;
    of several mounts on one point, the last one mounted (it hides the others)."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mountpoint
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint)):
            best = mount
    return best


def volume_encryption(
    mount: Mount, devices: Sequence[BlockDevice], *, system: bool = False
) -> VolumeEncryption | str:
    """Whether `mount` sits on a dm-crypt mapping, or why that cannot be told."""
    device = next((d for d in devices if mount.mountpoint in d.mountpoints), None)
    if device is None:
        # btrfs and bind mounts may list the mount elsewhere; the device number still matches.
        device = next((d for d in devices if d.majmin and d.majmin == mount.majmin), None)
    if device is None:
        return (
            f"{mount.mountpoint}: {mount.fstype} filesystem from {mount.source}, on no block "
            "device lsblk lists (a container overlay, a network share, ZFS?)"
        )
    chain = (device, *device.ancestors)
    crypt = next((d for d in chain if d.type == "crypt"), None)
    luks = next((d for d in chain if d.fstype == "crypto_LUKS"), None)
    if crypt is None and luks is None:
        path = " on ".join(d.name for d in chain)
        return VolumeEncryption(
            mount.mountpoint,
            device.name,
            EncryptionState.NOT_ENCRYPTED,
            "",
            system=system,
            detail=f"{path}: no crypt device",
        )
    method = "LUKS" if luks is not None else "dm-crypt"
    holder = crypt or luks
    assert holder is not None
    return VolumeEncryption(
        mount.mountpoint,
        device.name,
        EncryptionState.ENCRYPTED,
        method,
        percent_encrypted=100.0,
        system=system,
        detail=f"{device.name} on {method} device {holder.name}",
    )


_lsblk_cache: dict[str, tuple[str, tuple[BlockDevice, ...]]] = {}


def _block_devices(mountinfo: str) -> tuple[BlockDevice, ...] | Unavailable:
    """lsblk's tree, run again only when the mounts or the set of block devices changed."""
    try:
        key = mountinfo + "\0" + ",".join(sorted(os.listdir("/sys/block")))
    except OSError:
        key = mountinfo
    cached = _lsblk_cache.get("lsblk")
    if cached is not None and cached[0] == key:
        return cached[1]
    output = run_command(("lsblk", "-J", "-o", LSBLK_COLUMNS), TOOL_TIMEOUT_S)
    if isinstance(output, Unavailable) and "exited with" in output.reason:
        output = run_command(("lsblk", "-J", "-o", LSBLK_COLUMNS_OLD), TOOL_TIMEOUT_S)
    if isinstance(output, Unavailable):
        return output
    devices = parse_lsblk(output.stdout)
    if not isinstance(devices, Unavailable):
        _lsblk_cache["lsblk"] = (key, devices)
    return devices


def disk_encryption(mountpoints: Sequence[str]) -> DiskEncryptionFacts | Unavailable:
    """Whether / and each of `mountpoints` (or the mount holding it) is on dm-crypt / LUKS."""
    mountinfo = read_text("/proc/self/mountinfo")
    if isinstance(mountinfo, Unavailable):
        return mountinfo
    devices = _block_devices(mountinfo)
    if isinstance(devices, Unavailable):
        return devices
    mounts = parse_mountinfo(mountinfo)
    volumes: list[VolumeEncryption] = []
    errors: list[str] = []
    judged: set[str] = set()
    for path in ("/", *mountpoints):
        if not os.path.exists(path):
            errors.append(f"{path}: no such file or directory")
            continue
        mount = owning_mount(os.path.realpath(path), mounts)
        if mount is None:
            errors.append(f"{path}: not on any mounted filesystem")
            continue
        if mount.mountpoint in judged:
            continue
        judged.add(mount.mountpoint)
        found = volume_encryption(mount, devices, system=path == "/")
        if isinstance(found, str):
            errors.append(found)
        else:
            volumes.append(found)
    return DiskEncryptionFacts(tuple(volumes), tuple(errors))


# --- antivirus agents besides ClamAV -----------------------------------------------------------

KNOWN_AGENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Microsoft Defender for Endpoint", ("/opt/microsoft/mdatp",)),
    ("CrowdStrike Falcon", ("/opt/CrowdStrike",)),
    ("Sophos Protection for Linux", ("/opt/sophos-spl",)),
    ("ESET Server Security", ("/opt/eset/efs",)),
    ("Trellix / McAfee Endpoint Security", ("/opt/McAfee/ens", "/opt/isec/ens")),
    ("SentinelOne", ("/opt/sentinelone",)),
)
"""Commercial endpoint agents, recognised by their install directory (presence only)."""


def installed_agents() -> tuple[AntivirusProduct, ...]:
    """Known commercial agents whose install directory exists; nothing is run."""
    found = []
    for name, paths in KNOWN_AGENTS:
        present = next((p for p in paths if os.path.isdir(p)), None)
        if present is not None:
            found.append(AntivirusProduct(name, "installed", None, None, detail=present))
    return tuple(found)
