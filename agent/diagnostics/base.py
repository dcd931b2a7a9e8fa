"""What every diagnostic action is: declared arguments, timeout and output cap, and run().

Argument models are frozen, refuse unknown fields and bound every value; the types below
(Host, AbsolutePath, ServiceName) carry the validation the actions share.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agent.diagnostics.model import ActionContext
from agent.facts.models import Unavailable

DEFAULT_OUTPUT_CAP = 256 * 1024
MAX_STRING = 253


class Arguments(BaseModel):
    """Base of every action's arguments: immutable, unknown fields refused, no NaN."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=False)


class NoArguments(Arguments):
    pass


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A host name (RFC 1123 labels) or an IP address literal."""
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    name = value.rstrip(".")
    if not name or len(name) > MAX_STRING or not all(_LABEL.match(p) for p in name.split(".")):
        raise ValueError(f"{value!r} is not a host name or IP address")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _absolute_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("the path contains a NUL character")
    path = PurePath(value)
    if not path.is_absolute():
        raise ValueError(f"{value!r} is not an absolute path")
    if ".." in path.parts:
        raise ValueError(f"{value!r}: '..' is not allowed in the path")
    return os.path.normpath(value)


Host = Annotated[str, Field(min_length=1, max_length=MAX_STRING), AfterValidator(check_host)]
IpAddress = Annotated[str, Field(min_length=2, max_length=45), AfterValidator(_ip)]
AbsolutePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_absolute_path)]
ServiceName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9@._:-]*$")
]
Port = Annotated[int, Field(ge=1, le=65535)]


class ActionFailed(Exception):
    """Raised by an action that could not do what it was asked; the run is FAILED with this."""


class Progress:
    """Handed to run(): call it with a line to report progress; it also knows the deadline.

    An action that loops checks `stopped` (set when the runner gave up on it, at its timeout)
    and `remaining()` to bound its own waits.
    """

    def __init__(self, emit: Callable[[str], None], timeout_s: float) -> None:
        self._emit = emit
        self.deadline = time.monotonic() + timeout_s
        self._stop = threading.Event()
        self.told_to_stop = False
        """`stopped` said so: whatever the action returns after is cut short by its deadline."""

    def __call__(self, line: str) -> None:
        self._emit(line[:500])

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def stopped(self) -> bool:
        if self._stop.is_set() or time.monotonic() > self.deadline:
            self.told_to_stop = True
        return self.told_to_stop

    def stop(self) -> None:
        self._stop.set()


ArgsT = TypeVar("ArgsT", bound=Arguments)


class Action(ABC, Generic[ArgsT]):
    """One named diagnostic or remediation.

    Subclasses declare the class attributes and implement `run`, which gathers through
    agent/facts (never psutil, never a shell) and returns JSON-able data. It may raise
    ActionFailed(reason); any other exception is a FAILED run too, never a crash.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    arguments: type[ArgsT]
    timeout_seconds: ClassVar[float] = 30.0
    output_cap_bytes: ClassVar[int] = DEFAULT_OUTPUT_CAP
    remediation: ClassVar[bool] = False

    @abstractmethod
    def run(self, args: ArgsT, ctx: ActionContext, progress: Progress) -> dict[str, Any]:
        """Do it, in a worker thread, within `timeout_seconds`."""


def unknown(reason: str, **extra: Any) -> dict[str, Any]:
    """The output of a read-only action that could not look, and why (UNKNOWN, not FAILED)."""
    return {"status": "unknown", "reason": reason, **extra}


def facts_or_unknown(found: object) -> dict[str, Any]:
    """Facts as JSON, or the UNKNOWN output when they are Unavailable."""
    if isinstance(found, Unavailable):
        return unknown(found.reason)
    value = jsonable(found)
    return value if isinstance(value, dict) else {"value": value}


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, mappings, datetimes and paths as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
