"""Python enums for the contract's closed vocabularies, one-to-one with remdiag/v1/common.proto.

Values are the proto numbers, so converting is `Enum(pb_value)` and `int(member)`.
"""

from __future__ import annotations

from enum import IntEnum

from remdiag.v1 import common_pb2 as pb


class CheckStatus(IntEnum):
    OK = pb.CHECK_STATUS_OK
    WARNING = pb.CHECK_STATUS_WARNING
    CRITICAL = pb.CHECK_STATUS_CRITICAL
    UNKNOWN = pb.CHECK_STATUS_UNKNOWN

    @property
    def is_failure(self) -> bool:
        return self in (CheckStatus.WARNING, CheckStatus.CRITICAL)

    @property
    def label(self) -> str:
        return self.name.lower()


class Category(IntEnum):
    HARDWARE = pb.CATEGORY_HARDWARE
    SOFTWARE = pb.CATEGORY_SOFTWARE
    NETWORK = pb.CATEGORY_NETWORK
    SECURITY = pb.CATEGORY_SECURITY

    @property
    def label(self) -> str:
        return self.name.lower()


class Severity(IntEnum):
    WARNING = pb.SEVERITY_WARNING
    CRITICAL = pb.SEVERITY_CRITICAL

    @property
    def label(self) -> str:
        return self.name.lower()


class TicketState(IntEnum):
    NEW = pb.TICKET_STATE_NEW
    ACKNOWLEDGED = pb.TICKET_STATE_ACKNOWLEDGED
    IN_PROGRESS = pb.TICKET_STATE_IN_PROGRESS
    RESOLVED = pb.TICKET_STATE_RESOLVED
    CLOSED = pb.TICKET_STATE_CLOSED
    REOPENED = pb.TICKET_STATE_REOPENED

    @property
    def is_open(self) -> bool:
        return self not in (TicketState.RESOLVED, TicketState.CLOSED)

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


class Priority(IntEnum):
    P1 = pb.PRIORITY_P1
    P2 = pb.PRIORITY_P2
    P3 = pb.PRIORITY_P3
    P4 = pb.PRIORITY_P4


class Tier(IntEnum):
    L1 = pb.TIER_L1
    L2 = pb.TIER_L2
    L3 = pb.TIER_L3
    L4 = pb.TIER_L4


class DiagnosticState(IntEnum):
    QUEUED = pb.DIAGNOSTIC_STATE_QUEUED
    SENT = pb.DIAGNOSTIC_STATE_SENT
    RUNNING = pb.DIAGNOSTIC_STATE_RUNNING
    DONE = pb.DIAGNOSTIC_STATE_DONE
    FAILED = pb.DIAGNOSTIC_STATE_FAILED
    EXPIRED = pb.DIAGNOSTIC_STATE_EXPIRED
    REFUSED = pb.DIAGNOSTIC_STATE_REFUSED

    @property
    def is_final(self) -> bool:
        return self in (
            DiagnosticState.DONE,
            DiagnosticState.FAILED,
            DiagnosticState.EXPIRED,
            DiagnosticState.REFUSED,
        )

    @property
    def label(self) -> str:
        return self.name.lower()
