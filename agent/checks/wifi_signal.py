"""network.wifi_signal: warns when the Wi-Fi signal is too weak for a steady connection."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_min
from agent.facts.models import Unavailable
from agent.facts.network.models import WifiFacts, WifiLink
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class WifiSignalThresholds(Thresholds):
    min_signal_dbm_warning: float = Field(default=-70, ge=-120, le=0)
    """Below about -70 dBm video calls stutter; below -80 dBm the link drops now and then."""
    min_signal_dbm_critical: float = Field(default=-80, ge=-120, le=0)
    min_quality_percent_warning: float = Field(default=40, ge=0, le=100)
    """Judged too, and alone where the OS gives no dBm. 40 % is about -80 dBm on Windows' and
    Linux's scales, so with both known the dBm limits usually decide."""
    min_quality_percent_critical: float = Field(default=20, ge=0, le=100)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.min_signal_dbm_warning < self.min_signal_dbm_critical:
            raise ValueError("min_signal_dbm_warning must not be below min_signal_dbm_critical")
        if self.min_quality_percent_warning < self.min_quality_percent_critical:
            raise ValueError(
                "min_quality_percent_warning must not be below min_quality_percent_critical"
            )
        return self


class WifiSignal(Check[WifiFacts, WifiSignalThresholds]):
    id = "network.wifi_signal"
    title = "Wi-Fi signal strength"
    category = Category.NETWORK
    default_interval = timedelta(minutes=5)
    remediation = (
        "Move closer to the Wi-Fi access point or remove what stands between (walls, metal "
        "cabinets), or use a network cable. If the signal is weak at this desk every day, "
        "ask for another access point or a wired connection there."
    )
    emits = (
        ValueSpec("signal_dbm", "dBm", "received signal strength of the weakest connected link"),
        ValueSpec("quality_percent", "%", "link quality as the OS rates it"),
        ValueSpec("noise_dbm", "dBm", "background noise level, where the OS reports it"),
        ValueSpec("interface", "", "the Wi-Fi interface judged"),
        ValueSpec("ssid", "", "the network it is connected to, where the OS tells"),
    )
    thresholds_type = WifiSignalThresholds

    def gather(
        self, source: FactSource, thresholds: WifiSignalThresholds
    ) -> WifiFacts | Unavailable:
        return source.wifi()

    def evaluate(self, facts: WifiFacts, thresholds: WifiSignalThresholds) -> Outcome:
        if not facts.links:
            return Outcome(CheckStatus.UNKNOWN, "no Wi-Fi interface")
        connected = [link for link in facts.links if link.connected]
        if not connected:
            names = ", ".join(link.interface for link in facts.links)
            return Outcome(CheckStatus.UNKNOWN, f"Wi-Fi not connected ({names})")
        measured = [
            link
            for link in connected
            if link.signal_dbm is not None or link.quality_percent is not None
        ]
        if not measured:
            names = ", ".join(link.interface for link in connected)
            return Outcome(
                CheckStatus.UNKNOWN, f"Wi-Fi connected ({names}) but the OS gives no signal level"
            )
        # The weakest connected link: the one a user would feel.
        judged = [(_grade(link, thresholds), link) for link in measured]
        (status, reasons), link = max(judged, key=lambda j: (j[0][0], -_strength(j[1])))
        return Outcome(status, _summary(link, status, reasons), _values(link))


def _strength(link: WifiLink) -> float:
    if link.signal_dbm is not None:
        return link.signal_dbm
    # Place a quality-only link on the dBm scale (0 % = -100 dBm, 100 % = -50 dBm).
    return (link.quality_percent or 0.0) / 2.0 - 100.0


def _grade(link: WifiLink, t: WifiSignalThresholds) -> tuple[CheckStatus, tuple[str, ...]]:
    """The link's status and, when not OK, which limits it crossed at that status."""
    grades: list[tuple[CheckStatus, str]] = []
    if link.signal_dbm is not None:
        status = grade_min(link.signal_dbm, t.min_signal_dbm_warning, t.min_signal_dbm_critical)
        limit = (
            t.min_signal_dbm_critical
            if status is CheckStatus.CRITICAL
            else t.min_signal_dbm_warning
        )
        grades.append((status, f"below {limit:g} dBm"))
    if link.quality_percent is not None:
        status = grade_min(
            link.quality_percent, t.min_quality_percent_warning, t.min_quality_percent_critical
        )
        limit = (
            t.min_quality_percent_critical
            if status is CheckStatus.CRITICAL
            else t.min_quality_percent_warning
        )
        grades.append((status, f"below {limit:g}% quality"))
    worst = max(status for status, _ in grades)
    if worst is CheckStatus.OK:
        return worst, ()
    return worst, tuple(reason for status, reason in grades if status is worst)


def _summary(link: WifiLink, status: CheckStatus, reasons: tuple[str, ...]) -> str:
    parts = []
    if link.signal_dbm is not None:
        parts.append(f"{link.signal_dbm:.0f} dBm")
    if link.quality_percent is not None:
        parts.append(f"{link.quality_percent:.0f}% quality")
    network = f" on {link.ssid}" if link.ssid else ""
    summary = f"{link.interface}{network}: Wi-Fi signal {', '.join(parts)}"
    if reasons:
        summary += f" ({status.label} {', '.join(reasons)})"
    return summary


def _values(link: WifiLink) -> tuple[Measured, ...]:
    values = [Measured("interface", link.interface, "")]
    if link.signal_dbm is not None:
        values.append(Measured("signal_dbm", link.signal_dbm, "dBm"))
    if link.quality_percent is not None:
        values.append(Measured("quality_percent", link.quality_percent, "%"))
    if link.noise_dbm is not None:
        values.append(Measured("noise_dbm", link.noise_dbm, "dBm"))
    if link.ssid:
        values.append(Measured("ssid", link.ssid, ""))
    return tuple(values)
