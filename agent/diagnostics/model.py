"""The diagnostics' plain data: a request, its outcome, what an action is given, the catalog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.config import DiagnosticsSettings
from agent.facts.source import FactSource
from agent.plan import Plan
from remdiag.vocabulary import DiagnosticState

ProgressSink = Callable[[str], Awaitable[None]]
"""Where the runner sends an action's progress lines (the transport streams them on)."""


@dataclass(frozen=True)
class Request:
    """A technician's request to run one named action on this machine."""

    request_id: str
    action: str
    args: dict[str, Any]
    requested_by: str
    """Who asked (the technician's name as the collector knows it); shown in the history."""
    expires_at: datetime | None
    """Timezone-aware; a request past it is refused, not run late."""
    ticket_id: int = 0
    """The ticket the run belongs to, 0 for none."""


@dataclass(frozen=True)
class Outcome:
    state: DiagnosticState
    """DONE, FAILED or REFUSED."""
    output: dict[str, Any]
    """The action's JSON-able answer (empty when refused or failed before any)."""
    error: str = ""
    """Why it failed or was refused, one line."""
    truncated: bool = False
    """The output went past the action's cap and was cut (it is still valid JSON)."""


@dataclass(frozen=True)
class ActionContext:
    """What actions may use of the running agent."""

    source: FactSource
    plan: Callable[[], Plan]
    """The plan in force now (checks, with the collector's thresholds)."""
    inventory: Callable[[], Mapping[str, Any]]
    """The inventory by section, as facts (Agent.inventory_sections)."""
    settings: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    """The local [diagnostics] settings; the runner sets its own here."""


@dataclass(frozen=True)
class ArgumentInfo:
    name: str
    type: str
    """"string", "integer", "number", "boolean" or "array"."""
    required: bool
    description: str
    default: str
    """The default as JSON text; empty when the argument is required."""
    choices: tuple[str, ...] = ()
    """The allowed values, when the argument (or each item of an array) is one of a few."""


@dataclass(frozen=True)
class ActionInfo:
    name: str
    summary: str
    arguments: tuple[ArgumentInfo, ...]
    timeout_seconds: float
    remediation: bool
    output_cap_bytes: int
