"""What the collector may ask of agents: the agents' own action catalog, and the admin's policy.

The actions and their argument schemas live with the agent (agent/diagnostics); the collector
reads the same registry to refuse a bad request before queueing it. The agent checks again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.diagnostics.registry import REMEDIATIONS, InvalidDiagnostic, catalog, validate_args
from collector.diagnostics import DiagnosticError

__all__ = ["DiagnosticsPolicy", "catalog", "is_remediation", "validate"]


def validate(action: str, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments with their defaults filled in; DiagnosticError names what is wrong."""
    try:
        return validate_args(action, args)
    except InvalidDiagnostic as exc:
        raise DiagnosticError(str(exc)) from None


def is_remediation(action: str) -> bool:
    return action in REMEDIATIONS


class TriageStep(BaseModel):
    """One diagnostic auto-triage runs when a ticket opens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str
    args: dict[str, Any] = Field(default_factory=dict)


class DiagnosticsPolicy(BaseModel):
    """`[diagnostics]` in the collector's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_expiry_seconds: int = Field(3600, ge=10, le=7 * 24 * 3600)
    """How long a request waits for an offline machine unless the caller says otherwise."""
    max_expiry_seconds: int = Field(7 * 24 * 3600, ge=10, le=30 * 24 * 3600)
    remediation_enabled: bool = False
    """Admin opt-in to safe L1 remediation; each agent must opt in too, in its own config."""
    remediation_actions: list[str] = Field(default_factory=list)
    """The remediation actions allowed once enabled (empty: none), as on the agent."""
    auto_triage: bool = True
    """Run the `triage` diagnostics when a ticket opens and attach them to it."""
    triage: dict[str, list[TriageStep]] = Field(default_factory=lambda: dict(DEFAULT_TRIAGE))
    """By check id, else category (`hardware`, `network`, ...): the diagnostics to run."""

    @model_validator(mode="after")
    def _known_actions(self) -> DiagnosticsPolicy:
        for name in self.remediation_actions:
            if not is_remediation(name):
                raise ValueError(f"remediation_actions: {name!r} is not a remediation action")
        for key, steps in self.triage.items():
            for step in steps:
                try:
                    validate(step.action, step.args)
                except DiagnosticError as exc:
                    raise ValueError(f"triage.{key}: {exc}") from None
        return self

    def allows_remediation(self, action: str) -> bool:
        return self.remediation_enabled and action in self.remediation_actions

    def triage_for(self, check_id: str, category: str) -> list[TriageStep]:
        if not self.auto_triage:
            return []
        return self.triage.get(check_id) or self.triage.get(category) or []


# What a technician would look at first, by check id or category; steps need no arguments
# beyond what every machine has, since auto-triage knows only the failing check.
DEFAULT_TRIAGE: dict[str, list[TriageStep]] = {
    "disk.free_space": [TriageStep(action="largest_dirs", args={"path": "/"})],
    "disk.fill_soon": [TriageStep(action="largest_dirs", args={"path": "/"})],
    "disk.inodes": [TriageStep(action="largest_dirs", args={"path": "/"})],
    "disk.smart": [TriageStep(action="smart_details")],
    "memory.pressure": [TriageStep(action="top_processes", args={"by": "memory"})],
    "memory.swap": [TriageStep(action="top_processes", args={"by": "memory"})],
    "cpu.sustained_load": [TriageStep(action="top_processes", args={"by": "cpu"})],
    "process.runaway": [
        TriageStep(action="top_processes", args={"by": "cpu"}),
        TriageStep(action="top_processes", args={"by": "memory"}),
    ],
    "log.error_burst": [TriageStep(action="system_log_errors")],
    "service.down": [TriageStep(action="services_status")],
    "updates.security_pending": [TriageStep(action="pending_updates")],
    "os.reboot_required": [TriageStep(action="pending_updates")],
    "network": [TriageStep(action="interfaces_routes")],
    "security": [TriageStep(action="run_all_checks", args={"category": "security"})],
}
