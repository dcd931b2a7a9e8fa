"""The collector's configuration: TOML file, REMDIAG_COLLECTOR_* environment variables, defaults."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from agent.checks.registry import CHECKS
from collector.engine import TicketRules
from remdiag.configfile import LayeredSettings

DEFAULT_PORT = 50051


class TicketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fails_before_ticket: int = Field(3, ge=1, le=1000)
    passes_before_resolve: int = Field(2, ge=1, le=1000)

    def rules(self) -> TicketRules:
        return TicketRules(self.fails_before_ticket, self.passes_before_resolve)


class CheckPolicySettings(BaseModel):
    """What the collector tells agents about one check; the agent validates the thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval_seconds: int = Field(0, ge=0, le=7 * 24 * 3600)
    thresholds: dict[str, Any] = Field(default_factory=dict)


class CollectorSettings(LayeredSettings):
    model_config = SettingsConfigDict(
        env_prefix="REMDIAG_COLLECTOR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    """host:port to serve gRPC on; port 0 picks a free one."""
    database_url: str = "sqlite:///remdiag-collector.db"
    """SQLAlchemy URL: sqlite:///PATH (default) or postgresql+psycopg://USER@HOST/DB."""
    heartbeat_interval_seconds: int = Field(30, ge=1, le=3600)
    allow_open_enrollment: bool = True
    """Enroll any agent that asks, without a token: for loopback and trials only."""
    tickets: TicketSettings = TicketSettings()
    checks: dict[str, CheckPolicySettings] = Field(default_factory=dict)
    """Policy sent to every agent, by check id (e.g. [checks."disk.free_space"])."""

    insecure: bool = False
    """Allow listening beyond loopback without TLS. Agents' credentials then cross the
    network in the clear: for isolated test networks only."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @property
    def listens_beyond_loopback(self) -> bool:
        host = self.listen.rpartition(":")[0].strip("[]")
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True  # a host name may resolve anywhere

    @model_validator(mode="after")
    def _safe_and_valid(self) -> CollectorSettings:
        if self.listens_beyond_loopback and not self.insecure:
            raise ValueError(
                f"listen: {self.listen} is beyond loopback and TLS is not available yet; "
                "listen on 127.0.0.1, or set insecure = true (--insecure) on a trusted network"
            )
        for check_id, policy in self.checks.items():
            check = CHECKS.get(check_id)
            if check is None:
                raise ValueError(
                    f"checks.{check_id}: unknown check (known: {', '.join(sorted(CHECKS))})"
                )
            try:
                check.thresholds(policy.thresholds)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"checks.{check_id}.thresholds.{field}: {first['msg']}") from None
        return self
