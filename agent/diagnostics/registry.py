"""The actions a technician may run on this machine, by stable name: the one list to add to.

Nothing outside this list ever runs. The collector imports `catalog()` and `validate_args()`
to check a request before queueing it; the agent validates again whatever arrives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from agent.diagnostics.actions.checks import RunAllChecks, RunCheck
from agent.diagnostics.actions.machine import (
    Inventory,
    LargestDirs,
    PendingUpdates,
    ServicesStatus,
    SmartDetails,
    SystemLogErrors,
    TopProcesses,
)
from agent.diagnostics.actions.network import (
    DnsLookup,
    HttpCheck,
    InterfacesRoutes,
    Ping,
    TcpConnect,
    Traceroute,
)
from agent.diagnostics.actions.remediation import ClearTemp, FlushDnsCache, RestartService
from agent.diagnostics.base import Action
from agent.diagnostics.model import ActionInfo, ArgumentInfo

ACTIONS: Mapping[str, Action[Any]] = MappingProxyType(
    {
        action.name: action
        for action in (
            # read-only
            RunCheck(),
            RunAllChecks(),
            Inventory(),
            TopProcesses(),
            LargestDirs(),
            Ping(),
            TcpConnect(),
            DnsLookup(),
            Traceroute(),
            HttpCheck(),
            InterfacesRoutes(),
            SystemLogErrors(),
            ServicesStatus(),
            PendingUpdates(),
            SmartDetails(),
            # remediation (opt-in in the agent's config)
            ClearTemp(),
            RestartService(),
            FlushDnsCache(),
        )
    }
)

REMEDIATIONS: tuple[str, ...] = tuple(n for n, a in ACTIONS.items() if a.remediation)


class InvalidDiagnostic(ValueError):
    """A request this agent would refuse: unknown action or invalid arguments."""


class UnknownAction(InvalidDiagnostic):
    pass


class InvalidArguments(InvalidDiagnostic):
    pass


def get_action(name: str) -> Action[Any]:
    """The action registered as `name`; UnknownAction naming the known ones otherwise."""
    action = ACTIONS.get(name)
    if action is None:
        raise UnknownAction(f"unknown action {name!r} (known: {', '.join(sorted(ACTIONS))})")
    return action


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def validate_args(action: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """`args` checked against the action's declared arguments, with defaults filled in, as
    JSON-able values. Raises UnknownAction or InvalidArguments (both ValueError)."""
    return validated_args(get_action(action), args)


def validated_args(action: Action[Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """validate_args for an action in hand; InvalidArguments when they do not fit."""
    if not isinstance(args, Mapping):
        raise InvalidArguments(f"{action.name}: the arguments must be an object")
    try:
        model = action.arguments.model_validate(dict(args))
    except ValidationError as exc:
        raise InvalidArguments(f"{action.name}: invalid argument {_first_error(exc)}") from None
    validated: dict[str, Any] = model.model_dump(mode="json")
    return validated


_JSON_TYPES = {"string", "integer", "number", "boolean", "array"}


def _argument(name: str, schema: dict[str, Any], required: bool) -> ArgumentInfo:
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    chosen = options[0] if options else {}
    kind = chosen.get("type", "string")
    if kind not in _JSON_TYPES:
        kind = "string"
    enum = chosen.get("enum") or chosen.get("items", {}).get("enum") or ()
    if "const" in chosen:
        enum = (chosen["const"],)
    default = "" if required else json.dumps(schema.get("default"))
    return ArgumentInfo(
        name=name,
        type=kind,
        required=required,
        description=str(schema.get("description", "")),
        default=default,
        choices=tuple(str(e) for e in enum),
    )


def describe(action: Action[Any]) -> ActionInfo:
    model = action.arguments
    schema = model.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    arguments = []
    for name in model.model_fields:
        field_schema = dict(properties.get(name, {}))
        if name not in required and "default" not in field_schema:
            factory = model.model_fields[name].default_factory
            field_schema["default"] = factory() if factory else None
        arguments.append(_argument(name, field_schema, name in required))
    return ActionInfo(
        name=action.name,
        summary=action.summary,
        arguments=tuple(arguments),
        timeout_seconds=action.timeout_seconds,
        remediation=action.remediation,
        output_cap_bytes=action.output_cap_bytes,
    )


def catalog() -> list[ActionInfo]:
    """Every action this agent knows, with its arguments, in registry order."""
    return [describe(action) for action in ACTIONS.values()]
