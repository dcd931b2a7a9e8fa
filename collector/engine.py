"""The ticket rules, pure: (check state, result status, rules, time) -> new state and decision.

No I/O, no clock of its own: collector/ingest.py loads the state, passes the time, applies the
decision and persists the new state.

Hysteresis: `fails_before_ticket` failures in a row open a ticket, `passes_before_resolve`
passes in a row resolve it. Flapping: more than `flap_changes` flips between passing and failing
within `flap_window_s` marks the check flapping; a failing flapping check opens a ticket even
without a run of failures, and a flapping ticket is never auto-resolved until the flips age out
of the window. A ticket resolved less than `reopen_window_s` ago is reopened instead of a new
one opening.
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
    flap_changes: int = 4
    """More flips than this within the window is flapping."""
    flap_window_s: float = 3600.0
    reopen_window_s: float = 24 * 3600.0
    """A failure this soon after the check's ticket resolved reopens it (0: never)."""


@dataclass(frozen=True)
class RuleState:
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    open_severity: Severity | None = None
    """Severity of the open ticket for this machine and check; None when there is none."""
    flapping: bool = False
    """The open ticket is marked flapping."""
    last_failed: bool | None = None
    """Whether the latest conclusive result failed; None before the first one."""
    changes: tuple[float, ...] = ()
    """Times of recent flips, oldest first, at most `flap_changes` + 1 kept."""
    last_resolved_at: float | None = None
    """When the check's latest ticket was resolved (not closed by a person); None otherwise."""

    @property
    def ticket_open(self) -> bool:
        return self.open_severity is not None


@dataclass(frozen=True)
class OpenTicket:
    severity: Severity
    reopen: bool = False
    """Reopen the check's ticket resolved within the reopen window instead of a new one."""
    flapping: bool = False
    """Opened because the check is flapping, before a full run of failures."""


@dataclass(frozen=True)
class RecordFailure:
    """Another failure on an open ticket; `raised_to` is set when it made the ticket more severe."""

    raised_to: Severity | None = None
    flapping: bool | None = None
    """True or False when this result started or ended flapping; None when unchanged."""


@dataclass(frozen=True)
class ResolveTicket:
    passes: int


@dataclass(frozen=True)
class FlappingChanged:
    """A pass on an open ticket started or ended flapping (the ticket stays open)."""

    flapping: bool


Decision = OpenTicket | RecordFailure | ResolveTicket | FlappingChanged


def severity_of(status: CheckStatus) -> Severity:
    return Severity.CRITICAL if status is CheckStatus.CRITICAL else Severity.WARNING


def is_flapping(changes: tuple[float, ...], now: float, rules: TicketRules) -> bool:
    return sum(1 for t in changes if now - t <= rules.flap_window_s) > rules.flap_changes


def counts_only(
    status: CheckStatus, consecutive_failures: int, consecutive_passes: int, ticket_open: bool
) -> bool:
    """Whether `decide` would do nothing but count one more pass: a pass after a pass, with no
    ticket open. Most results are such passes; ingest then skips building the rule state."""
    return (
        status is CheckStatus.OK
        and not ticket_open
        and consecutive_passes > 0
        and not consecutive_failures
    )


def decide(
    state: RuleState, status: CheckStatus, rules: TicketRules, now: float = 0.0
) -> tuple[RuleState, Decision | None]:
    """Apply one result at `now` (seconds). UNKNOWN says nothing about health: no change."""
    if status is CheckStatus.UNKNOWN:
        return state, None
    failed = status.is_failure
    if state.last_failed is not None and state.last_failed != failed:
        kept = tuple(t for t in state.changes if now - t <= rules.flap_window_s)
        state = replace(state, changes=(*kept, now)[-(rules.flap_changes + 1) :])
    state = replace(state, last_failed=failed)
    flapping = is_flapping(state.changes, now, rules)
    if failed:
        return _on_failure(state, severity_of(status), flapping, rules, now)
    return _on_pass(state, flapping, rules, now)


def _on_failure(
    state: RuleState, severity: Severity, flapping: bool, rules: TicketRules, now: float
) -> tuple[RuleState, Decision | None]:
    failures = state.consecutive_failures + 1
    state = replace(state, consecutive_failures=failures, consecutive_passes=0)
    if state.open_severity is not None:
        raised = severity if severity > state.open_severity else None
        flip = flapping if flapping != state.flapping else None
        state = replace(state, open_severity=raised or state.open_severity, flapping=flapping)
        return state, RecordFailure(raised_to=raised, flapping=flip)
    if failures >= rules.fails_before_ticket or flapping:
        reopen = (
            state.last_resolved_at is not None
            and now - state.last_resolved_at <= rules.reopen_window_s
        )
        opened = replace(state, open_severity=severity, flapping=flapping, last_resolved_at=None)
        return opened, OpenTicket(severity, reopen=reopen, flapping=flapping)
    return state, None


def _on_pass(
    state: RuleState, flapping: bool, rules: TicketRules, now: float
) -> tuple[RuleState, Decision | None]:
    passes = state.consecutive_passes + 1
    state = replace(state, consecutive_failures=0, consecutive_passes=passes)
    if state.open_severity is None:
        return state, None
    if passes >= rules.passes_before_resolve and not flapping:
        resolved = replace(state, open_severity=None, flapping=False, last_resolved_at=now)
        return resolved, ResolveTicket(passes)
    if flapping != state.flapping:
        return replace(state, flapping=flapping), FlappingChanged(flapping)
    return state, None
