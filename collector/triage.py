"""Where a new ticket lands: priority from urgency x impact, starting tier, SLA deadlines.

Pure: ingest asks it when the engine opens a ticket. The matrix follows GLPI's urgency x impact
idea on three levels each; every part is configurable in `[desk]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from remdiag.vocabulary import Category, Priority, Severity, Tier


class Level(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# urgency -> impact -> priority
DEFAULT_MATRIX: dict[Level, dict[Level, Priority]] = {
    Level.HIGH: {Level.LOW: Priority.P3, Level.MEDIUM: Priority.P2, Level.HIGH: Priority.P1},
    Level.MEDIUM: {Level.LOW: Priority.P4, Level.MEDIUM: Priority.P3, Level.HIGH: Priority.P2},
    Level.LOW: {Level.LOW: Priority.P4, Level.MEDIUM: Priority.P4, Level.HIGH: Priority.P3},
}
DEFAULT_URGENCY = {Severity.CRITICAL: Level.HIGH, Severity.WARNING: Level.MEDIUM}
# A failing disk, a security exposure or a broken service needs more than first contact.
DEFAULT_TIERS: dict[str, Tier] = {
    "disk.smart": Tier.L2,
    "service.down": Tier.L2,
    "security": Tier.L2,
}


class SlaSettings(BaseModel):
    """First response and resolution, in minutes, for one priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    respond_minutes: float = Field(gt=0, le=60 * 24 * 90, allow_inf_nan=False)
    resolve_minutes: float = Field(gt=0, le=60 * 24 * 365, allow_inf_nan=False)


DEFAULT_SLA = {
    "P1": SlaSettings(respond_minutes=15, resolve_minutes=4 * 60),
    "P2": SlaSettings(respond_minutes=60, resolve_minutes=8 * 60),
    "P3": SlaSettings(respond_minutes=4 * 60, resolve_minutes=3 * 24 * 60),
    "P4": SlaSettings(respond_minutes=24 * 60, resolve_minutes=5 * 24 * 60),
}


class DeskSettings(BaseModel):
    """`[desk]` in the collector's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_impact: Level = Level.MEDIUM
    """Impact of a machine none of whose tags is in `impact_tags`."""
    impact_tags: dict[str, Level] = Field(
        default_factory=lambda: {"vip": Level.HIGH, "server": Level.HIGH, "lab": Level.LOW}
    )
    """Machine tag -> impact; a machine with several takes the highest."""
    tiers: dict[str, str] = Field(
        default_factory=lambda: {k: v.name for k, v in DEFAULT_TIERS.items()}
    )
    """Starting tier by check id or by category (`hardware`, `security`, ...); else L1."""
    sla: dict[str, SlaSettings] = Field(default_factory=lambda: dict(DEFAULT_SLA))
    """By priority, P1 to P4."""
    sweep_seconds: float = Field(60.0, ge=1, le=3600)
    """How often open tickets are checked against their SLA deadlines (and windows)."""
    offline_after_seconds: float = Field(24 * 3600, ge=10, le=60 * 60 * 24 * 30)
    """No word from a machine for this long opens an `offline` ticket. End-user PCs are
    switched off at night, so the default is a day; `offline_after_by_tag` is quicker."""
    offline_after_by_tag: dict[str, float] = Field(default_factory=lambda: {"server": 15.0 * 60})
    """Machine tag -> seconds; a machine with several takes the shortest."""

    @field_validator("offline_after_by_tag")
    @classmethod
    def _offline_bounds(cls, value: dict[str, float]) -> dict[str, float]:
        for tag, seconds in value.items():
            if not 10 <= seconds <= 60 * 60 * 24 * 30:
                raise ValueError(f"offline_after_by_tag.{tag}: from 10 s to 30 days")
        return value

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tier in value.items():
            if tier not in Tier.__members__:
                raise ValueError(f"tiers.{key}: {tier!r} is not one of L1, L2, L3, L4")
        return value

    @field_validator("sla")
    @classmethod
    def _every_priority(cls, value: dict[str, SlaSettings]) -> dict[str, SlaSettings]:
        missing = set(Priority.__members__) - set(value)
        unknown = set(value) - set(Priority.__members__)
        if missing or unknown:
            raise ValueError(
                f"sla needs exactly P1, P2, P3 and P4 (missing {sorted(missing)}, "
                f"unknown {sorted(unknown)})"
            )
        return value


_LEVEL_ORDER = (Level.LOW, Level.MEDIUM, Level.HIGH)


def impact_of(tags: list[str], desk: DeskSettings) -> Level:
    """The highest impact any of the machine's tags gives, else the default."""
    levels = [desk.impact_tags[t] for t in tags if t in desk.impact_tags]
    return max(levels, key=_LEVEL_ORDER.index) if levels else desk.default_impact


def offline_after(tags: list[str], desk: DeskSettings) -> float:
    """Seconds of silence after which the machine counts as offline."""
    by_tag = [desk.offline_after_by_tag[t] for t in tags if t in desk.offline_after_by_tag]
    return min(by_tag, default=desk.offline_after_seconds)


@dataclass(frozen=True)
class Placement:
    priority: Priority
    tier: Tier
    respond_by: datetime
    resolve_by: datetime


def place(
    check_id: str,
    category: Category,
    severity: Severity,
    opened_at: datetime,
    desk: DeskSettings,
    impact: Level | None = None,
) -> Placement:
    """Priority, starting tier and SLA deadlines of a ticket opened at `opened_at`."""
    urgency = DEFAULT_URGENCY[severity]
    priority = DEFAULT_MATRIX[urgency][impact or desk.default_impact]
    tier_name = desk.tiers.get(check_id) or desk.tiers.get(category.label) or "L1"
    sla = desk.sla[priority.name]
    return Placement(
        priority=priority,
        tier=Tier[tier_name],
        respond_by=opened_at + timedelta(minutes=sla.respond_minutes),
        resolve_by=opened_at + timedelta(minutes=sla.resolve_minutes),
    )
