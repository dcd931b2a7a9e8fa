"""collector/triage.py on recorded cases: the matrix, tiers and SLA deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from collector.triage import DeskSettings, Level, place
from remdiag.vocabulary import Category, Priority, Severity, Tier

OPENED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DESK = DeskSettings()


@pytest.mark.parametrize(
    ("severity", "impact", "priority"),
    [
        (Severity.CRITICAL, Level.HIGH, Priority.P1),
        (Severity.CRITICAL, Level.MEDIUM, Priority.P2),
        (Severity.CRITICAL, Level.LOW, Priority.P3),
        (Severity.WARNING, Level.HIGH, Priority.P2),
        (Severity.WARNING, Level.MEDIUM, Priority.P3),
        (Severity.WARNING, Level.LOW, Priority.P4),
    ],
)
def test_priority_is_urgency_by_impact(
    severity: Severity, impact: Level, priority: Priority
) -> None:
    placed = place("disk.free_space", Category.HARDWARE, severity, OPENED, DESK, impact)
    assert placed.priority is priority


def test_default_impact_and_sla_deadlines() -> None:
    placed = place("disk.free_space", Category.HARDWARE, Severity.CRITICAL, OPENED, DESK)
    assert placed.priority is Priority.P2
    assert placed.respond_by == OPENED + timedelta(hours=1)
    assert placed.resolve_by == OPENED + timedelta(hours=8)


@pytest.mark.parametrize(
    ("check_id", "category", "tier"),
    [
        ("disk.free_space", Category.HARDWARE, Tier.L1),
        ("disk.smart", Category.HARDWARE, Tier.L2),
        ("security.firewall", Category.SECURITY, Tier.L2),
        ("network.dns", Category.NETWORK, Tier.L1),
    ],
)
def test_starting_tier_by_check_then_category(
    check_id: str, category: Category, tier: Tier
) -> None:
    assert place(check_id, category, Severity.WARNING, OPENED, DESK).tier is tier


def test_configured_tiers_and_sla_win() -> None:
    desk = DeskSettings.model_validate(
        {
            "tiers": {"network": "L3"},
            "sla": {
                "P1": {"respond_minutes": 5, "resolve_minutes": 60},
                "P2": {"respond_minutes": 10, "resolve_minutes": 120},
                "P3": {"respond_minutes": 20, "resolve_minutes": 240},
                "P4": {"respond_minutes": 30, "resolve_minutes": 480},
            },
        }
    )
    placed = place("network.dns", Category.NETWORK, Severity.WARNING, OPENED, desk)
    assert placed.tier is Tier.L3
    assert placed.respond_by == OPENED + timedelta(minutes=20)


@pytest.mark.parametrize(
    "bad",
    [
        {"tiers": {"network": "L9"}},
        {"sla": {"P1": {"respond_minutes": 5, "resolve_minutes": 60}}},
        {"default_impact": "huge"},
    ],
)
def test_invalid_desk_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DeskSettings.model_validate(bad)
