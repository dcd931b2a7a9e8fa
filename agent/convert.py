"""Domain <-> proto for the agent: results out, policy in."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from agent import __version__
from agent.diagnostics.model import Outcome, Request
from agent.facts.machine import MachineFacts
from agent.outbox import Batch
from agent.plan import PolicyEntry
from agent.runner import CheckRun
from remdiag.v1 import agent_pb2, common_pb2
from remdiag.vocabulary import DiagnosticState

MAX_TEXT = 2000


def machine_identity(machine: MachineFacts) -> agent_pb2.MachineIdentity:
    return agent_pb2.MachineIdentity(**dataclasses.asdict(machine))


def result_message(run: CheckRun) -> common_pb2.CheckResult:
    observed = Timestamp()
    observed.FromDatetime(run.observed_at)
    thresholds = Struct()
    thresholds.update(run.thresholds)
    message = common_pb2.CheckResult(
        check_id=run.check_id,
        category=int(run.category),  # type: ignore[arg-type]
        status=int(run.status),  # type: ignore[arg-type]
        # Within the collector's default [limits], so a long summary never gets a batch refused.
        summary=_bounded(run.summary, MAX_TEXT),
        thresholds=thresholds,
        observed_at=observed,
        remediation=_bounded(run.remediation, MAX_TEXT),
    )
    for measured in run.values:
        value = message.values.add(name=measured.name, unit=measured.unit)
        if isinstance(measured.value, str) or not math.isfinite(measured.value):
            # Struct and JSON have no infinity or NaN: say it in words instead.
            value.text = _bounded(str(measured.value), MAX_TEXT)
        else:
            value.number = float(measured.value)
    return message


def _bounded(text: str, limit: int) -> str:
    """Within `limit` characters and free of NUL, which the collector refuses."""
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def batch_message(batch: Batch) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        sequence=batch.sequence,
        results=agent_pb2.ResultBatch(results=[result_message(r) for r in batch.results]),
    )


def inventory_message(
    sequence: int,
    sections: dict[str, Any],
    *,
    full: bool = False,
    removed: tuple[str, ...] = (),
) -> agent_pb2.AgentMessage:
    body = Struct()
    body.update(sections)
    collected = Timestamp()
    collected.GetCurrentTime()
    return agent_pb2.AgentMessage(
        sequence=sequence,
        inventory=agent_pb2.Inventory(
            collected_at=collected, facts=body, full=full, removed_sections=list(removed)
        ),
    )


def policy_entries(policy: common_pb2.Policy) -> dict[str, PolicyEntry]:
    return {
        p.check_id: PolicyEntry(
            disabled=p.disabled,
            interval_seconds=p.interval_seconds,
            thresholds=json_format.MessageToDict(p.thresholds)
            if p.HasField("thresholds")
            else None,
            cron=p.cron,
            timezone=p.timezone,
        )
        for p in policy.checks
    }


def hello_message(
    agent_id: str,
    machine: MachineFacts,
    *,
    last_sequence: int,
    dropped: int,
    policy_version: int,
) -> agent_pb2.AgentMessage:
    """The stream's first message: who this is, where its spool stands, which policy it runs."""
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(
            agent_id=agent_id,
            agent_version=__version__,
            machine=machine_identity(machine),
            last_sequence=last_sequence,
            dropped=dropped,
            policy_version=policy_version,
        )
    )


def heartbeat_message(
    queued: int, dropped: int = 0, policy_version: int = 0
) -> agent_pb2.AgentMessage:
    """A heartbeat saying how many results wait in the spool, how many it ever dropped, and
    which policy version the agent runs."""
    sent = Timestamp()
    sent.GetCurrentTime()
    return agent_pb2.AgentMessage(
        heartbeat=agent_pb2.Heartbeat(
            sent_at=sent, queued=queued, dropped=dropped, policy_version=policy_version
        )
    )


def diagnostic_request(message: agent_pb2.DiagnosticRequest) -> Request:
    """The collector's request as the agent's runner takes it (the runner validates it)."""
    expires = message.expires_at.ToDatetime(tzinfo=UTC) if message.HasField("expires_at") else None
    return Request(
        request_id=message.request_id,
        action=message.action,
        args=json_format.MessageToDict(message.args),
        requested_by=message.requested_by,
        expires_at=expires,
        ticket_id=message.ticket_id,
    )


def diagnostic_progress(request_id: str, line: str) -> agent_pb2.AgentMessage:
    return _diagnostic(request_id, DiagnosticState.RUNNING, progress=line)


def diagnostic_outcome(request_id: str, outcome: Outcome) -> agent_pb2.AgentMessage:
    output = None
    if outcome.output:
        output = Struct()
        output.update(outcome.output)
    return _diagnostic(
        request_id, outcome.state, output=output, error=outcome.error, truncated=outcome.truncated
    )


def _diagnostic(
    request_id: str,
    state: DiagnosticState,
    *,
    progress: str = "",
    output: Struct | None = None,
    error: str = "",
    truncated: bool = False,
) -> agent_pb2.AgentMessage:
    at = Timestamp()
    at.GetCurrentTime()
    return agent_pb2.AgentMessage(
        diagnostic=agent_pb2.DiagnosticUpdate(
            request_id=request_id,
            state=int(state),  # type: ignore[arg-type]
            progress=progress,
            output=output,
            error=error,
            truncated=truncated,
            at=at,
        )
    )
