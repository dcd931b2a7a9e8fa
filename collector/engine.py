"""The ticket rules, pure: (check state, new result status, rules) -> new state and a decision.

No I/O, no clock: collector/ingest.py loads the state, applies the decision and persists it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from remdiag.vocabulary import CheckStatus, Severity


@dataclass(frozen=True)
class TicketRules:
    fails_before_ticket: int = 3
    """Failures in a row that open a ticket."""
    passes_before_resolve: int = 2
    """Passes in a row that resolve an open ticket."""


@dataclass(frozen=True)
class RuleState:
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    open_severity: Severity | None = None
    """Severity of the open ticket for this machine and check; None when there is none."""

    @property
    def ticket_open(self) -> bool:
        return self.open_severity is not None


@dataclass(frozen=True)
class OpenTicket:
    severity: Severity


@dataclass(frozen=True)
class RecordFailure:
    """Another failure on an open ticket; `raised_to` is set when it made the ticket more severe."""

    raised_to: Severity | None = None


@dataclass(frozen=True)
class ResolveTicket:
    passes: int


Decision = OpenTicket | RecordFailure | ResolveTicket


def severity_of(status: CheckStatus) -> Severity:
    return Severity.CRITICAL if status is CheckStatus.CRITICAL else Severity.WARNING


def decide(
    state: RuleState, status: CheckStatus, rules: TicketRules
) -> tuple[RuleState, Decision | None]:
    """Apply one result. UNKNOWN says nothing about health, so it changes nothing."""
    if status is CheckStatus.UNKNOWN:
        return state, None
    if status.is_failure:
        return _on_failure(state, severity_of(status), rules)
    return _on_pass(state, rules)


def _on_failure(
    state: RuleState, severity: Severity, rules: TicketRules
) -> tuple[RuleState, Decision | None]:
    failures = state.consecutive_failures + 1
    state = replace(state, consecutive_failures=failures, consecutive_passes=0)
    if state.open_severity is not None:
        if severity > state.open_severity:
            return replace(state, open_severity=severity), RecordFailure(raised_to=severity)
        return state, RecordFailure()
    if failures >= rules.fails_before_ticket:
        return replace(state, open_severity=severity), OpenTicket(severity)
    return state, None


def _on_pass(state: RuleState, rules: TicketRules) -> tuple[RuleState, Decision | None]:
    passes = state.consecutive_passes + 1
    state = replace(state, consecutive_failures=0, consecutive_passes=passes)
    if state.open_severity is not None and passes >= rules.passes_before_resolve:
        return replace(state, open_severity=None), ResolveTicket(passes)
    return state, None
