"""The agent's configuration: TOML file, REMDIAG_AGENT_* environment variables, defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from agent.checks.registry import check_overrides
from remdiag.addresses import host_port
from remdiag.configfile import LayeredSettings


def default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "remdiag-agent"


class CheckSettings(BaseModel):
    """Local settings for one check; the collector's policy may override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    thresholds: dict[str, Any] = Field(default_factory=dict)


class TlsSettings(BaseModel):
    """How the agent reaches a TLS collector. Once enrolled it pins the CA the collector
    returned (state_dir/ca.pem) and presents the client certificate it was given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    """The collector's CA certificate (its data dir's ca.pem), trusted for the first enrollment."""
    server_name: str = Field("", max_length=253)
    """Name to check the collector's certificate against, when the address is not one of its
    names (e.g. an IP address the certificate does not list)."""
    enroll_address: str = ""
    """host:port of the collector's enrollment port; empty: the collector's host, port + 1."""
    insecure: bool = False
    """Plaintext to a collector beyond loopback (it runs with --insecure): test networks only."""

    @field_validator("enroll_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return value and host_port(value)


class DiagnosticsSettings(BaseModel):
    """What technicians' diagnostics may do on this machine (agent/diagnostics).

    Read-only diagnostics always run. Remediation is opt-in twice on the machine: the switch
    `remediation_enabled` AND the action's name in `remediation_actions` (empty: none).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    remediation_enabled: bool = False
    remediation_actions: list[str] = Field(default_factory=list, max_length=16)
    """Remediation actions allowed here, by name (clear_temp, restart_service, flush_dns_cache)."""
    temp_dirs: list[Path] = Field(default_factory=list, max_length=32)
    """The only directories clear_temp may remove old files from (absolute paths)."""
    services_allowed: list[str] = Field(default_factory=list, max_length=64)
    """The only services restart_service may restart."""
    history_max: int = Field(1000, ge=10, le=100_000)
    """Runs kept in state_dir/diagnostics.db (`remdiag-agent history`); the oldest go first."""

    @field_validator("remediation_actions")
    @classmethod
    def _known_remediations(cls, value: list[str]) -> list[str]:
        if not value:
            return value  # nothing to look up: the registry stays unloaded until it is needed
        from agent.diagnostics.registry import REMEDIATIONS  # the registry imports this module

        unknown = sorted(set(value) - set(REMEDIATIONS))
        if unknown:
            raise ValueError(
                f"unknown remediation {', '.join(unknown)} (known: {', '.join(REMEDIATIONS)})"
            )
        return value

    @field_validator("temp_dirs")
    @classmethod
    def _absolute(cls, value: list[Path]) -> list[Path]:
        for path in value:
            if not path.is_absolute() or ".." in path.parts:
                raise ValueError(f"{path}: temp_dirs must be absolute paths without '..'")
        return value

    @field_validator("services_allowed")
    @classmethod
    def _service_names(cls, value: list[str]) -> list[str]:
        from agent.facts.software.service_control import SERVICE_NAME

        for name in value:
            if not SERVICE_NAME.match(name):
                raise ValueError(f"{name!r} is not a service name")
        return value


class AgentSettings(LayeredSettings):
    model_config = SettingsConfigDict(
        env_prefix="REMDIAG_AGENT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    collector: str = "127.0.0.1:50051"
    """host:port of the collector."""
    state_dir: Path = Field(default_factory=default_state_dir)
    """Where the agent keeps its identity (readable only by its owner)."""
    enrollment_token: str = ""
    """Enrollment token from the admin: lets `run` enroll by itself (or use
    `remdiag-agent enroll --token`). Not needed while the collector allows open enrollment."""
    tls: TlsSettings = TlsSettings()
    batch_max_results: int = Field(100, ge=1, le=1000)
    batch_max_delay_seconds: float = Field(2.0, gt=0, le=300)
    """How long a result may wait for others before its batch is sent."""
    max_unacked_batches: int = Field(8, ge=1, le=1000)
    outbox_max_results: int = Field(10_000, ge=10, le=10_000_000)
    """Results kept while the collector is away; the oldest are dropped past this."""
    outbox_max_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024, le=16 * 1024**3)
    """Bytes of results the spool (state_dir/outbox.db) keeps; the oldest are dropped past this."""
    reconnect_initial_seconds: float = Field(1.0, gt=0, le=60)
    reconnect_max_seconds: float = Field(60.0, gt=0, le=3600)
    inventory_interval_seconds: float = Field(900.0, ge=10, le=7 * 24 * 3600)
    """How often the inventory is gathered again; only changed sections are sent."""
    checks: dict[str, CheckSettings] = Field(default_factory=dict)
    """Per check id, e.g. [checks."disk.free_space"] thresholds = { paths = ["/"] }."""
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    """What technicians' on-demand diagnostics and remediation may do on this machine."""

    @field_validator("collector")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)

    @model_validator(mode="after")
    def _checks_known_and_valid(self) -> AgentSettings:
        for check_id, settings in self.checks.items():
            check_overrides(check_id, settings.thresholds)
        return self
