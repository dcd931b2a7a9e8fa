"""What a technician may do to a ticket, pure: (ticket as it is, action, actor) -> the change.

collector/desk.py loads the ticket, asks `plan`, applies the change and records the event.
States: new -> acknowledged (taken, assigned, commented) -> in progress (started) -> resolved
-> closed; resolved or closed -> reopened. The first act of a person on a new or reopened
ticket is its first response: it stops the first-response SLA clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from remdiag.vocabulary import TicketState, Tier

MAX_NAME = 128
MAX_TEXT = 4000
AWAITING_RESPONSE = (TicketState.NEW, TicketState.REOPENED)


class ActionError(ValueError):
    """The action does not fit the ticket as it is; the message says why."""


class ArgumentError(ActionError):
    """An argument of the action is bad (empty, too long), whatever the ticket."""


@dataclass(frozen=True)
class Take:
    pass


@dataclass(frozen=True)
class Assign:
    assignee: str


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Escalate:
    note: str = ""


@dataclass(frozen=True)
class Resolve:
    note: str


@dataclass(frozen=True)
class Close:
    note: str = ""


@dataclass(frozen=True)
class Reopen:
    note: str = ""


Action = Take | Assign | Start | Comment | Escalate | Resolve | Close | Reopen


@dataclass(frozen=True)
class TicketFacts:
    """What the rules need of a ticket."""

    id: int
    state: TicketState
    tier: Tier
    assignee: str | None
    acknowledged: bool


@dataclass(frozen=True)
class Change:
    state: TicketState
    assignee: str | None
    tier: Tier
    acknowledge: bool
    """Set the first-response time now (it was unset)."""
    kind: str
    """The timeline event's kind."""
    message: str


def plan(ticket: TicketFacts, action: Action, actor: str) -> Change:
    """The change `actor` makes with `action`; ActionError when it does not apply."""
    _name(actor, "actor")
    state = ticket.state
    opened = state.is_open
    label = f"ticket {ticket.id} is {state.label}"

    def change(
        kind: str,
        message: str,
        *,
        new_state: TicketState | None = None,
        assignee: str | None = ticket.assignee,
        tier: Tier = ticket.tier,
        respond: bool = True,
    ) -> Change:
        if new_state is None:
            new_state = (
                TicketState.ACKNOWLEDGED if respond and state in AWAITING_RESPONSE else state
            )
        acknowledge = respond and not ticket.acknowledged and opened
        return Change(new_state, assignee, tier, acknowledge, kind, message)

    match action:
        case Take():
            _open(opened, label, "reopen it first")
            return change("taken", f"taken by {actor}", assignee=actor)
        case Assign(assignee=assignee):
            _open(opened, label, "reopen it first")
            _name(assignee, "assignee")
            return change("assigned", f"assigned to {assignee} by {actor}", assignee=assignee)
        case Start():
            _open(opened, label, "reopen it first")
            return change(
                "started",
                f"work in progress ({ticket.assignee or actor})",
                new_state=TicketState.IN_PROGRESS,
                assignee=ticket.assignee or actor,
            )
        case Comment(text=text):
            return change("comment", _text(text, "comment"), respond=opened)
        case Escalate(note=note):
            _open(opened, label, "reopen it first")
            if ticket.tier is Tier.L4:
                raise ActionError(f"ticket {ticket.id} is already at L4, the last tier")
            up = Tier(int(ticket.tier) + 1)
            was = f"; unassigned from {ticket.assignee}" if ticket.assignee else ""
            # Nobody works it at the new tier until someone there takes it: not in progress.
            waits = TicketState.ACKNOWLEDGED if state is TicketState.IN_PROGRESS else state
            return change(
                "escalated",
                _with_note(f"escalated by {actor}: {ticket.tier.name} -> {up.name}{was}", note),
                new_state=waits,
                assignee=None,
                tier=up,
                respond=False,
            )
        case Resolve(note=note):
            _open(opened, label, "nothing to resolve")
            return change(
                "resolved",
                f"resolved by {actor}: {_text(note, 'resolution note')}",
                new_state=TicketState.RESOLVED,
            )
        case Close(note=note):
            if state is TicketState.CLOSED:
                raise ActionError(f"{label} already")
            return change(
                "closed",
                _with_note(f"closed by {actor}", note),
                new_state=TicketState.CLOSED,
                respond=opened,
            )
        case Reopen(note=note):
            if opened:
                raise ActionError(f"{label}: only a resolved or closed ticket can be reopened")
            return change(
                "reopened",
                _with_note(f"reopened by {actor}", note),
                new_state=TicketState.REOPENED,
                respond=False,
            )
    raise ActionError(f"unknown action {action!r}")  # pragma: no cover - the match is total


def _open(opened: bool, label: str, hint: str) -> None:
    if not opened:
        raise ActionError(f"{label}: {hint}")


def _name(value: str, what: str) -> str:
    if not value.strip():
        raise ArgumentError(f"{what} is empty")
    if len(value) > MAX_NAME or not value.isprintable():
        raise ArgumentError(f"{what} must be printable and at most {MAX_NAME} characters")
    return value


def _text(value: str, what: str) -> str:
    if not value.strip():
        raise ArgumentError(f"{what} is empty")
    if len(value) > MAX_TEXT:
        raise ArgumentError(f"{what} is longer than {MAX_TEXT} characters")
    return value.strip()


def _with_note(message: str, note: str) -> str:
    return f"{message}: {_text(note, 'note')}" if note.strip() else message
