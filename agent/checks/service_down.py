"""service.down: services this PC needs are running, and none has failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable
from agent.facts.software.models import ServicesFacts, ServiceState
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

NAMED = 5

ServiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class ServiceDownThresholds(Thresholds):
    services: tuple[ServiceName, ...] = Field(default=(), max_length=64)
    """Services that must be running (systemd unit with or without ".service", Windows service
    or display name; any case). One that is not running is critical."""
    ignore_failed: tuple[ServiceName, ...] = Field(default=(), max_length=64)
    """Failed services that are known and accepted on this machine."""
    max_failed_services_warning: int = Field(default=0, ge=0)
    """Failed services not in `services` (the service manager's failed state)."""
    max_failed_services_critical: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_failed_services_warning > self.max_failed_services_critical:
            raise ValueError(
                "max_failed_services_warning must not exceed max_failed_services_critical"
            )
        return self


class ServiceDown(Check[ServicesFacts, ServiceDownThresholds]):
    id = "service.down"
    title = "Service down"
    category = Category.SOFTWARE
    default_interval = timedelta(minutes=2)
    remediation = (
        "Restart the PC; most stopped services start again by themselves. If the named service "
        "stays stopped, start it from Services (services.msc) or with `systemctl start <name>`, "
        "and read its log for why it stopped (`journalctl -u <name>` or the Event Viewer)."
    )
    emits = (
        ValueSpec("services_down", "count", "listed services that are not running"),
        ValueSpec("failed_services", "count", "other services the service manager marks failed"),
        ValueSpec("services_total", "count", "services the service manager knows of"),
    )
    thresholds_type = ServiceDownThresholds

    def gather(
        self, source: FactSource, thresholds: ServiceDownThresholds
    ) -> ServicesFacts | Unavailable:
        return source.services()

    def evaluate(self, facts: ServicesFacts, thresholds: ServiceDownThresholds) -> Outcome:
        t = thresholds
        if not facts.services:
            return Outcome(CheckStatus.UNKNOWN, f"{facts.manager} listed no services")
        index: dict[str, ServiceState] = {}
        for service in facts.services:
            for name in (service.name, service.display_name):
                if name:
                    index.setdefault(_key(name), service)
        down = []
        listed = set()
        for wanted in t.services:
            found = index.get(_key(wanted))
            if found is None:
                down.append(f"{wanted} (not found)")
            else:
                listed.add(found.name)
                if not found.running:
                    down.append(f"{wanted} ({found.state})")
        accepted = {_key(name) for name in t.ignore_failed}
        failed = [
            s.name
            for s in facts.failed
            if s.name not in listed
            and _key(s.name) not in accepted
            and _key(s.display_name) not in accepted
        ]
        values = (
            Measured("services_down", len(down), "count"),
            Measured("failed_services", len(failed), "count"),
            Measured("services_total", len(facts.services), "count"),
        )
        parts = []
        status = grade_max(
            len(failed), t.max_failed_services_warning, t.max_failed_services_critical
        )
        if down:
            status = CheckStatus.CRITICAL
            parts.append(f"not running: {_named(down)}")
        elif t.services:
            parts.append(f"{len(t.services)} listed service(s) running")
        if failed:
            parts.append(f"{len(failed)} failed: {_named(failed)}")
        else:
            parts.append(f"no failed services among {len(facts.services)} ({facts.manager})")
        return Outcome(status, "; ".join(parts), values)


def _key(name: str) -> str:
    return name.strip().casefold().removesuffix(".service")


def _named(names: list[str]) -> str:
    shown = ", ".join(names[:NAMED])
    more = len(names) - NAMED
    return shown + (f" and {more} more" if more > 0 else "")
