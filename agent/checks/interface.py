"""network.interface: flags a network interface that went down or keeps losing packets."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import Field, StringConstraints

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec
from agent.facts.models import InterfaceFacts, InterfacesFacts, Unavailable
from agent.facts.network.models import InterfaceSampleFacts
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

InterfaceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]

# Virtual bridges and tunnels that container and VM tools create: "down" whenever nothing uses
# them, which says nothing about the PC's own connection.
DEFAULT_IGNORED: tuple[str, ...] = (
    "docker*",
    "br-*",
    "veth*",
    "virbr*",
    "vboxnet*",
    "vmnet*",
    "cni*",
    "podman*",
    "lxcbr*",
    "lxdbr*",
)


class InterfaceThresholds(Thresholds):
    interfaces: tuple[InterfaceName, ...] = Field(default=(), max_length=32)
    """Interfaces that must be up, by name ("eth0", "Ethernet", "en0"); a missing one is down.
    Empty means every non-loopback interface that has an address (other than link-local)."""
    ignored_interfaces: tuple[InterfaceName, ...] = Field(default=DEFAULT_IGNORED, max_length=64)
    """Name patterns (shell-style, any case) left out when `interfaces` is empty."""
    max_errors_per_minute_warning: float = Field(default=10, ge=0)
    """Growth of the in+out error counters (bad frames, CRC errors: a cable or port fault)."""
    max_drops_per_minute_warning: float = Field(default=100, ge=0)
    """Growth of the in+out drop counters. Linux also counts frames for protocols it does not
    speak as drops, so some growth is normal on a busy network."""


@dataclass(frozen=True)
class _Rates:
    errors_per_minute: float
    drops_per_minute: float


class InterfaceHealth(Check[InterfaceSampleFacts, InterfaceThresholds]):
    id = "network.interface"
    title = "Network interfaces up and clean"
    category = Category.NETWORK
    default_interval = timedelta(minutes=1)
    remediation = (
        "For a down interface: check that the network cable is plugged in at both ends (the "
        "port light should be on) or that Wi-Fi is switched on. For growing errors: try another "
        "cable or wall port; if errors continue, the network card or the switch port is faulty."
    )
    emits = (
        ValueSpec("interfaces_expected", "count", "interfaces that should be up"),
        ValueSpec("interfaces_down", "count", "of those, down or missing"),
        ValueSpec("errors_per_minute", "1/min", "fastest growth of error counters"),
        ValueSpec("drops_per_minute", "1/min", "fastest growth of drop counters"),
        ValueSpec("interface", "", "the interface in the worst state"),
    )
    thresholds_type = InterfaceThresholds

    def gather(
        self, source: FactSource, thresholds: InterfaceThresholds
    ) -> InterfaceSampleFacts | Unavailable:
        return source.interface_sample()

    def evaluate(self, facts: InterfaceSampleFacts, thresholds: InterfaceThresholds) -> Outcome:
        t = thresholds
        expected = _expected(facts.current, t)
        if not expected:
            return Outcome(
                CheckStatus.CRITICAL,
                "no network connection: no interface besides loopback has an address",
                (Measured("interfaces_expected", 0, "count"),),
            )
        found = {name: _find(facts.current, name) for name in expected}
        down = [name for name, iface in found.items() if iface is None or not iface.is_up]
        values = [
            Measured("interfaces_expected", len(expected), "count"),
            Measured("interfaces_down", len(down), "count"),
        ]
        if down:
            values.append(Measured("interface", down[0], ""))
            listed = ", ".join(
                f"{name} is {'missing' if found[name] is None else 'down'}" for name in down
            )
            return Outcome(CheckStatus.CRITICAL, listed, tuple(values))
        plural = "s" if len(expected) > 1 else ""
        up = f"{len(expected)} interface{plural} up: {', '.join(expected)}"
        rates = _rates(facts, [iface for iface in found.values() if iface is not None])
        if not rates:
            return Outcome(CheckStatus.OK, up, tuple(values))
        worst_errors = max(rates, key=lambda name: rates[name].errors_per_minute)
        worst_drops = max(rates, key=lambda name: rates[name].drops_per_minute)
        values += [
            Measured("errors_per_minute", round(rates[worst_errors].errors_per_minute, 1), "1/min"),
            Measured("drops_per_minute", round(rates[worst_drops].drops_per_minute, 1), "1/min"),
        ]
        problems = [
            (name, f"{name} {rate:.0f} {what}/min (warning above {limit:g})")
            for name, r in rates.items()
            for what, rate, limit in (
                ("errors", r.errors_per_minute, t.max_errors_per_minute_warning),
                ("drops", r.drops_per_minute, t.max_drops_per_minute_warning),
            )
            if rate > limit
        ]
        if problems:
            values.append(Measured("interface", problems[0][0], ""))
            summary = "; ".join(text for _, text in problems)
            return Outcome(CheckStatus.WARNING, summary, tuple(values))
        return Outcome(CheckStatus.OK, up, tuple(values))


def _find(current: InterfacesFacts, name: str) -> InterfaceFacts | None:
    """The interface called `name`; Windows names differ in case between tools, so any case."""
    exact = next((iface for iface in current.interfaces if iface.name == name), None)
    if exact is not None:
        return exact
    folded = name.casefold()
    return next((i for i in current.interfaces if i.name.casefold() == folded), None)


def _is_configured(address: str) -> bool:
    """An address someone configured or leased: not loopback, not a link-local fallback."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local)


def _is_loopback(iface: InterfaceFacts) -> bool:
    return any(_loopback_address(a) for a in iface.addresses)


def _loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _expected(current: InterfacesFacts, t: InterfaceThresholds) -> list[str]:
    if t.interfaces:
        return list(dict.fromkeys(t.interfaces))
    ignored = [pattern.lower() for pattern in t.ignored_interfaces]
    return [
        iface.name
        for iface in current.interfaces
        if not _is_loopback(iface)
        and any(_is_configured(a) for a in iface.addresses)
        and not any(fnmatch.fnmatchcase(iface.name.lower(), p) for p in ignored)
    ]


def _rates(facts: InterfaceSampleFacts, judged: list[InterfaceFacts]) -> dict[str, _Rates]:
    """Per-minute growth of each judged interface's counters since the previous sample."""
    if facts.previous is None or not facts.elapsed_seconds or facts.elapsed_seconds <= 0:
        return {}
    before = {iface.name: iface for iface in facts.previous.interfaces}
    per_minute = 60.0 / facts.elapsed_seconds
    rates: dict[str, _Rates] = {}
    for new in judged:
        old = before.get(new.name)
        if old is None:
            continue  # appeared since the previous sample: nothing to compare with
        errors = new.errors_in + new.errors_out - old.errors_in - old.errors_out
        drops = new.drops_in + new.drops_out - old.drops_in - old.drops_out
        if errors < 0 or drops < 0:
            continue  # counters reset: the interface was re-created or the driver reloaded
        rates[new.name] = _Rates(errors * per_minute, drops * per_minute)
    return rates
