"""The collector's configuration: TOML file, REMDIAG_COLLECTOR_* environment variables, defaults."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import SettingsConfigDict

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

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value
