"""Policies: which checks run on which machines, how often and how strictly, layered by target.

A policy is a document (TOML on the admin's side, a Struct on the wire, JSON in the store):

    name = "finance laptops"
    priority = 10                      # optional; orders policies of the same layer
    target = { tags = ["finance"] }    # exactly one of: all = true, tags = [...], machines = [...]

    [checks."disk.free_space"]
    enabled = true
    interval_seconds = 300             # or: cron = "0 8 * * 1-5" and timezone = "Europe/Lisbon"
    thresholds = { max_used_percent_warning = 80 }

Groups are tags: a group of machines is the machines carrying a tag (`remdiag agents tag ID
+finance`), so a policy for a group targets that tag. `machines` lists agent ids.

Precedence, lowest first; each value comes from the highest layer that sets it:

    1. the collector's config `[checks]`                        source "collector config"
    2. policies targeting all machines                          source "policy NAME (all)"
    3. policies targeting a tag the machine carries             source "policy NAME (tag T)"
    4. policies naming the machine                              source "policy NAME (machine)"

Within a layer, policies apply in order of (priority, name): a higher priority overrides a lower
one, and at equal priority the name later in alphabetical order overrides. The values are
`enabled`, the schedule (`interval_seconds`, or `cron` with its `timezone`: one value, so a
layer that sets an interval replaces a cron from below and the reverse), and each threshold key
on its own. What no layer sets is the agent's own (its local config, else the check's default).

Versions: each policy has a version, bumped by every apply that changes it. A machine's effective
policy version is a 63-bit number derived from the canonical JSON of its effective policy (what
the agent receives): two collectors compute the same number without talking, and the same
content always has the same version. `Agent.policy_version` keeps the version the machine should
run; the agent reports the version it runs (Hello, Heartbeat) into `running_policy_version`.

The document model and `effective()` are pure; the store functions below them read and write
rows in the caller's transaction.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agent.checks.registry import CHECKS, check_overrides
from collector import windows
from collector.config import CheckPolicySettings
from collector.convert import dict_to_struct
from collector.store.models import Agent, Policy
from remdiag import crontab
from remdiag.v1 import common_pb2, console_pb2

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 128  # policies.name is String(128)
MAX_TAGS = 32
MAX_MACHINES = 1000
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_PRIORITY = 1_000_000
MAX_DOCUMENTS = 100
"""At most this many policies in one apply."""
MAX_ACTOR_CHARS = 128  # policies.updated_by is String(128)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # the syntax of machine tags (fleet.TAG)
_AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,36}")
CONFIG_SOURCE = "collector config"


class PolicyError(ValueError):
    """A policy refused whole; the text names the policy and the field, in one line."""


# --- The document -------------------------------------------------------------------------------


class Target(BaseModel):
    """Which machines a policy is for: exactly one of all, tags, machines (agent ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: bool = False
    tags: tuple[str, ...] = Field(default=(), max_length=MAX_TAGS)
    machines: tuple[str, ...] = Field(default=(), max_length=MAX_MACHINES)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _TAG.fullmatch(tag):
                raise ValueError(
                    f"tag {tag!r}: 1 to 64 lowercase letters, digits, '.', '_' or '-', "
                    "starting with a letter or digit"
                )
        return tuple(sorted(set(value)))

    @field_validator("machines")
    @classmethod
    def _machines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for agent_id in value:
            if not _AGENT_ID.fullmatch(agent_id):
                raise ValueError(f"machine {agent_id!r}: an agent id (remdiag agents)")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = sum((self.all, bool(self.tags), bool(self.machines)))
        if given != 1:
            raise ValueError("give exactly one of all = true, tags = [...] or machines = [...]")
        return self


class CheckEntry(BaseModel):
    """What a policy says about one check; whatever it leaves out, lower layers decide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    interval_seconds: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)
    cron: str | None = None
    """Five fields, crontab weekdays (0 or 7 is Sunday), read in `timezone`."""
    timezone: str | None = None
    """IANA name; only with `cron`; default UTC."""
    thresholds: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _schedule(self) -> CheckEntry:
        if self.cron is not None and self.interval_seconds is not None:
            raise ValueError("give interval_seconds or cron, not both")
        if self.timezone is not None and self.cron is None:
            raise ValueError("timezone: only with cron")
        if self.cron is not None:
            # Read as the agent will read it: APScheduler's CronTrigger, crontab weekdays
            # (0 or 7 is Sunday) rewritten for it, as for maintenance windows.
            trigger = crontab.cron_trigger(self.cron, self.timezone or "UTC")  # CronError
            if trigger.get_next_fire_time(None, windows.EPOCH) is None:
                raise ValueError(f"cron {self.cron!r}: never fires (no such date)")
        return self

    def schedule(self) -> dict[str, Any] | None:
        """The schedule as one value: {"interval_seconds": N} or {"cron": C, "timezone": Z}."""
        if self.interval_seconds is not None:
            return {"interval_seconds": self.interval_seconds}
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone or "UTC"}
        return None


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    target: Target
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    checks: dict[str, CheckEntry] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"1 to {MAX_NAME_CHARS} letters, digits, spaces, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: dict[str, CheckEntry]) -> dict[str, CheckEntry]:
        normalised: dict[str, CheckEntry] = {}
        for check_id, entry in value.items():
            check_overrides(check_id, entry.thresholds)  # ValueError naming check and field
            thresholds = (
                CHECKS[check_id]
                .thresholds(entry.thresholds)
                .model_dump(mode="json", include=set(entry.thresholds))
            )
            normalised[check_id] = entry.model_copy(update={"thresholds": thresholds})
        return normalised

    def spec(self) -> dict[str, Any]:
        """The canonical JSON form, as stored and shown: defaults left out."""
        dumped: dict[str, Any] = self.model_dump(mode="json", exclude_defaults=True)
        dumped["target"] = self.target.model_dump(mode="json", exclude_defaults=True)
        dumped["checks"] = {
            check_id: entry.model_dump(mode="json", exclude_defaults=True)
            for check_id, entry in sorted(self.checks.items())
        }
        return dumped


def parse(spec: Mapping[str, Any]) -> PolicyDocument:
    """A validated document; PolicyError, naming the policy and the field, otherwise."""
    name = spec.get("name")
    who = f"policy {name!r}" if isinstance(name, str) and name else "policy"
    try:
        return PolicyDocument.model_validate(dict(spec))
    except ValidationError as exc:
        raise PolicyError(f"{who}: {_reason(exc)}") from None


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = _clean(str(first["msg"]))
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    if not where or message.startswith(f"{where}.") or message.startswith(f"{where}:"):
        return message
    if where == "checks" and message.startswith("checks."):
        return message
    return f"{where}: {message}"


def _clean(message: str) -> str:
    """Pydantic's wording without its "Value error, " and the empty field of a whole-model
    error ("thresholds.: ..." -> "thresholds: ...")."""
    return message.replace("Value error, ", "").replace(".: ", ": ")


# --- Layering (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One value of a machine's effective policy, and the layer it came from."""

    check_id: str
    field: str
    """"enabled", "interval_seconds", "cron", "timezone" or "thresholds.<name>"."""
    value: Any
    source: str


@dataclass(frozen=True)
class Effective:
    values: tuple[Value, ...]
    policies: tuple[str, ...]
    """The policies that apply, lowest precedence first."""

    def message(self) -> common_pb2.Policy:
        """The Policy the agent receives, version included."""
        return policy_message(self.values)

    @property
    def version(self) -> int:
        return version_of(self.values)


@dataclass
class _Slot:
    enabled: tuple[bool, str] | None = None
    schedule: tuple[dict[str, Any], str] | None = None
    thresholds: dict[str, tuple[Any, str]] = field(default_factory=dict)


_LAYERS = {"all": 0, "tag": 1, "machine": 2}


def layers(
    policies: Iterable[PolicyDocument], tags: Iterable[str], agent_id: str
) -> list[tuple[PolicyDocument, str]]:
    """The policies that apply to this machine, lowest precedence first, with their source."""
    own = set(tags)
    found: list[tuple[tuple[int, int, str], PolicyDocument, str]] = []
    for policy in policies:
        target = policy.target
        if target.all:
            kind, source = "all", f"policy {policy.name} (all)"
        elif agent_id in target.machines:
            kind, source = "machine", f"policy {policy.name} (machine)"
        else:
            matched = sorted(own.intersection(target.tags))
            if not matched:
                continue
            kind, source = "tag", f"policy {policy.name} (tag {matched[0]})"
        found.append(((_LAYERS[kind], policy.priority, policy.name), policy, source))
    found.sort(key=lambda item: item[0])
    return [(policy, source) for _, policy, source in found]


def effective(
    policies: Iterable[PolicyDocument],
    tags: Iterable[str],
    agent_id: str,
    config_checks: Mapping[str, CheckPolicySettings],
) -> Effective:
    """A machine's effective policy: each value from the highest layer that sets it (see the
    module's docstring for the precedence), with where it came from."""
    slots: dict[str, _Slot] = {}
    for check_id, settings in config_checks.items():
        slot = slots.setdefault(check_id, _Slot())
        if "enabled" in settings.model_fields_set:
            slot.enabled = (settings.enabled, CONFIG_SOURCE)
        if settings.interval_seconds:
            slot.schedule = ({"interval_seconds": settings.interval_seconds}, CONFIG_SOURCE)
        if settings.thresholds:
            dumped = (
                CHECKS[check_id]
                .thresholds(settings.thresholds)
                .model_dump(mode="json", include=set(settings.thresholds))
            )
            for key, value in dumped.items():
                slot.thresholds[key] = (value, CONFIG_SOURCE)
    applied = layers(policies, tags, agent_id)
    for policy, source in applied:
        for check_id, entry in policy.checks.items():
            slot = slots.setdefault(check_id, _Slot())
            if entry.enabled is not None:
                slot.enabled = (entry.enabled, source)
            schedule = entry.schedule()
            if schedule is not None:
                slot.schedule = (schedule, source)
            for key, value in entry.thresholds.items():
                slot.thresholds[key] = (value, source)
    values: list[Value] = []
    for check_id, slot in sorted(slots.items()):
        if slot.enabled is not None:
            values.append(Value(check_id, "enabled", slot.enabled[0], slot.enabled[1]))
        if slot.schedule is not None:
            schedule, source = slot.schedule
            values.extend(Value(check_id, k, v, source) for k, v in schedule.items())
        for key, (value, source) in sorted(slot.thresholds.items()):
            values.append(Value(check_id, f"thresholds.{key}", value, source))
    return Effective(tuple(values), tuple(policy.name for policy, _ in applied))


def checks_of(values: Iterable[Value]) -> dict[str, dict[str, Any]]:
    """The effective values by check: {"enabled": ..., "interval_seconds" | "cron" +
    "timezone": ..., "thresholds": {...}}, sources left out."""
    checks: dict[str, dict[str, Any]] = {}
    for value in values:
        entry = checks.setdefault(value.check_id, {})
        if value.field.startswith("thresholds."):
            entry.setdefault("thresholds", {})[value.field.removeprefix("thresholds.")] = (
                value.value
            )
        else:
            entry[value.field] = value.value
    return checks


def version_of(values: Iterable[Value]) -> int:
    """The effective policy's version: 63 bits of the SHA-256 of its canonical JSON, never 0
    (0 means "none pushed yet")."""
    canonical = json.dumps(checks_of(values), sort_keys=True, separators=(",", ":"))
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big") >> 1
    return number or 1


def policy_message(values: Sequence[Value]) -> common_pb2.Policy:
    checks = checks_of(values)
    message = common_pb2.Policy(version=version_of(values))
    for check_id, entry in sorted(checks.items()):
        check = message.checks.add(
            check_id=check_id,
            disabled=entry.get("enabled") is False,
            interval_seconds=entry.get("interval_seconds", 0),
            cron=entry.get("cron", ""),
            timezone=entry.get("timezone", ""),
        )
        if "thresholds" in entry:
            check.thresholds.CopyFrom(dict_to_struct(entry["thresholds"]))
    return message


def invalid_thresholds(effective_policy: Effective) -> str | None:
    """Why the thresholds a machine would get do not hold together (e.g. a warning above the
    critical level once layers mix), or None."""
    for check_id, entry in checks_of(effective_policy.values).items():
        thresholds = entry.get("thresholds")
        if thresholds and check_id in CHECKS:
            try:
                check_overrides(check_id, thresholds)
            except ValueError as exc:
                return _clean(str(exc))
    return None


# --- Store --------------------------------------------------------------------------------------

Change = Literal["created", "changed", "unchanged"]


@dataclass(frozen=True)
class PolicyChange:
    name: str
    change: Change
    diff: str
    version: int


@dataclass(frozen=True)
class Push:
    """A machine whose effective policy changed, and the Policy to send it."""

    agent_id: str
    policy: common_pb2.Policy


@dataclass(frozen=True)
class Outcome:
    changes: tuple[PolicyChange, ...]
    machines_affected: int
    pushes: tuple[Push, ...]


def _documents(rows: Iterable[Policy]) -> list[PolicyDocument]:
    """Stored policies as documents; one that no longer validates (a check removed by an
    upgrade) is skipped with a warning rather than breaking every machine's policy."""
    docs = []
    for row in rows:
        try:
            docs.append(parse(row.spec))
        except PolicyError as exc:
            log.warning("stored policy %s is ignored: %s", row.name, exc)
    return docs


def list_policies(session: Session) -> list[Policy]:
    return list(session.scalars(select(Policy).order_by(Policy.name)))


def get_policy(session: Session, name: str) -> Policy | None:
    return session.scalars(select(Policy).where(Policy.name == name)).first()


def _diff(name: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    def lines(spec: dict[str, Any] | None) -> list[str]:
        if spec is None:
            return []
        return json.dumps(spec, indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(lines(before), lines(after), f"{name} (stored)", f"{name} (new)")
    )


def apply(
    session: Session,
    documents: Sequence[PolicyDocument],
    actor: str,
    now: datetime,
    config_checks: Mapping[str, CheckPolicySettings],
    *,
    dry_run: bool = False,
) -> Outcome:
    """Create or replace policies, all in the caller's transaction: PolicyError (raised before
    anything is written) refuses them all. A dry run only says what would change."""
    if len(documents) > MAX_DOCUMENTS:
        raise PolicyError(f"at most {MAX_DOCUMENTS} policies at once")
    actor = actor.strip()[:MAX_ACTOR_CHARS]
    seen: set[str] = set()
    for doc in documents:
        if doc.name in seen:
            raise PolicyError(f"policy {doc.name!r}: given twice")
        seen.add(doc.name)
    named = {m for doc in documents for m in doc.target.machines}
    if named:
        known = set(session.scalars(select(Agent.id).where(Agent.id.in_(named))))
        for doc in documents:
            unknown = sorted(set(doc.target.machines) - known)
            if unknown:
                raise PolicyError(
                    f"policy {doc.name!r}: target.machines: no machine {', '.join(unknown[:5])}"
                )
    rows = {row.name: row for row in session.scalars(select(Policy).with_for_update())}
    before = _documents(rows.values())
    after_by_name = {doc.name: doc for doc in before}
    changes: list[PolicyChange] = []
    for doc in documents:
        spec = doc.spec()
        row = rows.get(doc.name)
        if row is None:
            changes.append(PolicyChange(doc.name, "created", _diff(doc.name, None, spec), 1))
        elif row.spec == spec:
            changes.append(PolicyChange(doc.name, "unchanged", "", row.version))
        else:
            diff = _diff(doc.name, row.spec, spec)
            changes.append(PolicyChange(doc.name, "changed", diff, row.version + 1))
        after_by_name[doc.name] = doc
    affected, pushes = _recompute(
        session, before, list(after_by_name.values()), config_checks, write=not dry_run
    )
    if not dry_run:
        for doc, change in zip(documents, changes, strict=True):
            if change.change == "unchanged":
                continue
            row = rows.get(doc.name)
            if row is None:
                session.add(
                    Policy(
                        name=doc.name,
                        spec=doc.spec(),
                        version=1,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
            else:
                row.spec = doc.spec()
                row.version = change.version
                row.updated_at = now
                row.updated_by = actor
        session.flush()
    return Outcome(tuple(changes), affected, pushes)


def delete(
    session: Session, name: str, config_checks: Mapping[str, CheckPolicySettings]
) -> Outcome | None:
    """Delete a policy; None when there is no such policy."""
    rows = {row.name: row for row in session.scalars(select(Policy).with_for_update())}
    row = rows.get(name)
    if row is None:
        return None
    before = _documents(rows.values())
    after = [doc for doc in before if doc.name != name]
    affected, pushes = _recompute(session, before, after, config_checks, write=True)
    session.delete(row)
    session.flush()
    return Outcome((), affected, pushes)


def _recompute(
    session: Session,
    before: Sequence[PolicyDocument],
    after: Sequence[PolicyDocument],
    config_checks: Mapping[str, CheckPolicySettings],
    *,
    write: bool,
) -> tuple[int, tuple[Push, ...]]:
    """Every machine's effective policy under `after`: the number whose policy differs from
    under `before`, and (with `write`) store each new version and say what to push."""
    affected = 0
    pushes: list[Push] = []
    cache: dict[tuple[tuple[str, ...], str], tuple[Effective, Effective]] = {}
    targeted = {m for doc in (*before, *after) for m in doc.target.machines}
    agents = session.scalars(select(Agent).where(Agent.revoked_at.is_(None)).order_by(Agent.id))
    for agent in agents:
        tags = tuple(agent.tags or ())
        key = (tags, agent.id if agent.id in targeted else "")
        if key not in cache:
            cache[key] = (
                effective(before, tags, agent.id, config_checks),
                effective(after, tags, agent.id, config_checks),
            )
        old, new = cache[key]
        new_version = new.version
        if new_version != old.version:
            affected += 1
            problem = invalid_thresholds(new)
            if problem is not None:
                raise PolicyError(f"machine {agent.hostname} ({agent.id}): {problem}")
        if write and agent.policy_version != new_version:
            agent.policy_version = new_version
            pushes.append(Push(agent.id, new.message()))
    return affected, tuple(pushes)


@dataclass(frozen=True)
class MachinePolicy:
    agent_id: str
    hostname: str
    effective: Effective
    running_version: int


def machine_policy(
    session: Session, agent: Agent, config_checks: Mapping[str, CheckPolicySettings]
) -> MachinePolicy:
    """One machine's effective policy now (reads only)."""
    found = effective(_documents(list_policies(session)), agent.tags or (), agent.id, config_checks)
    return MachinePolicy(agent.id, agent.hostname, found, agent.running_policy_version or 0)


def policy_for(
    session: Session, agent_id: str, config_checks: Mapping[str, CheckPolicySettings]
) -> common_pb2.Policy | None:
    """The Policy to send this machine (Welcome, a push after its tags change); None when
    there is no such machine."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        return None
    found = machine_policy(session, agent, config_checks).effective
    if agent.policy_version != found.version:
        agent.policy_version = found.version
    return found.message()


def policy_on_connect(
    session: Session,
    agent_id: str,
    tags: Iterable[str],
    stored_version: int,
    config_checks: Mapping[str, CheckPolicySettings],
) -> common_pb2.Policy:
    """`policy_for` a machine saying hello, whose tags and stored version `fleet.connected`
    has just returned: its row is not loaded again (a whole fleet says hello after a restart,
    and the ORM load was a third of the Welcome's transaction)."""
    found = effective(_documents(list_policies(session)), tags, agent_id, config_checks)
    if found.version != stored_version:
        session.execute(
            update(Agent).where(Agent.id == agent_id).values(policy_version=found.version)
        )
    return found.message()


def policy_if_behind(
    session: Session, agent_id: str, running: int, config_checks: Mapping[str, CheckPolicySettings]
) -> common_pb2.Policy | None:
    """After a heartbeat saying the agent runs version `running`: its Policy again when that is
    not the version it should run, else None. This is how a change made through another
    collector process (which updated `Agent.policy_version`) reaches a stream held here."""
    if not running:
        return None  # an agent that does not report versions
    agent = session.get(Agent, agent_id)
    if agent is None or agent.policy_version == running:
        return None
    message = policy_for(session, agent_id, config_checks)
    return None if message is None or message.version == running else message


def policy_if_changed(
    session: Session, agent_id: str, config_checks: Mapping[str, CheckPolicySettings]
) -> common_pb2.Policy | None:
    """The machine's Policy when its effective version differs from the stored one (e.g. after
    its tags changed), storing the new version; None when unchanged or no such machine."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        return None
    before = agent.policy_version
    message = policy_for(session, agent_id, config_checks)
    return None if message is None or message.version == before else message


# --- Messages -----------------------------------------------------------------------------------


def document_message(row: Policy) -> console_pb2.PolicyDocument:
    message = console_pb2.PolicyDocument(
        name=row.name, spec=dict_to_struct(row.spec), version=row.version, updated_by=row.updated_by
    )
    message.updated_at.FromDatetime(row.updated_at)
    return message


def apply_response(outcome: Outcome) -> console_pb2.ApplyPolicyResponse:
    return console_pb2.ApplyPolicyResponse(
        changes=[
            console_pb2.PolicyChange(name=c.name, change=c.change, diff=c.diff, version=c.version)
            for c in outcome.changes
        ],
        machines_affected=outcome.machines_affected,
    )


def effective_message(found: MachinePolicy) -> console_pb2.EffectivePolicy:
    return console_pb2.EffectivePolicy(
        agent_id=found.agent_id,
        hostname=found.hostname,
        version=found.effective.version,
        running_version=found.running_version,
        values=[
            console_pb2.EffectiveValue(
                check_id=v.check_id,
                field=v.field,
                value_json=json.dumps(v.value),
                source=v.source,
            )
            for v in found.effective.values
        ],
        policies=found.effective.policies,
    )


# --- Files (the CLI's side) ---------------------------------------------------------------------


def read_files(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The policy documents in TOML files, unvalidated (the collector validates them): a file
    holds one policy (top-level name, target, checks), or several as `[[policy]]` tables and
    nothing else. PolicyError naming the file otherwise."""
    documents: list[dict[str, Any]] = []
    for path in paths:
        try:
            with path.open("rb") as opened:
                data = tomllib.load(opened)
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from None
        if "policy" in data:
            tables = data["policy"]
            if set(data) != {"policy"} or not isinstance(tables, list):
                raise PolicyError(
                    f"{path}: a file holds one policy, or [[policy]] tables and nothing else"
                )
            found = [t for t in tables if isinstance(t, dict)]
        else:
            found = [data]
        for document in found:
            try:
                json.dumps(document)  # what a Struct can carry
            except TypeError:
                raise PolicyError(
                    f"{path}: dates and times are not policy values (quote them as strings)"
                ) from None
        documents.extend(found)
    if not documents:
        raise PolicyError("no policy in the files given")
    return documents
