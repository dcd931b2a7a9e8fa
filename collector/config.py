"""The collector's configuration: TOML file, REMDIAG_COLLECTOR_* environment variables, defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agent.checks.registry import check_overrides
from collector.actions import DiagnosticsPolicy
from collector.engine import TicketRules
from collector.limits import LimitSettings
from collector.notify import NotifySettings
from collector.retention import RetentionSettings
from collector.triage import DeskSettings
from remdiag.addresses import host_port, is_loopback_host
from remdiag.configfile import LayeredSettings

DEFAULT_PORT = 50051


class TicketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fails_before_ticket: int = Field(3, ge=1, le=1000)
    passes_before_resolve: int = Field(2, ge=1, le=1000)
    reopen_window_minutes: float = Field(24 * 60, ge=0, le=60 * 24 * 90, allow_inf_nan=False)
    """A check failing again this soon after its ticket resolved reopens that ticket."""
    flap_changes: int = Field(4, ge=2, le=100)
    """More than this many pass/fail flips within `flap_window_minutes` is flapping."""
    flap_window_minutes: float = Field(60, gt=0, le=60 * 24 * 7, allow_inf_nan=False)

    def rules(self) -> TicketRules:
        return TicketRules(
            fails_before_ticket=self.fails_before_ticket,
            passes_before_resolve=self.passes_before_resolve,
            flap_changes=self.flap_changes,
            flap_window_s=self.flap_window_minutes * 60,
            reopen_window_s=self.reopen_window_minutes * 60,
        )


class CheckPolicySettings(BaseModel):
    """What the collector tells agents about one check; the agent validates the thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval_seconds: int = Field(0, ge=0, le=7 * 24 * 3600)
    thresholds: dict[str, Any] = Field(default_factory=dict)


class TlsSettings(BaseModel):
    """TLS is on whenever the collector listens beyond loopback (unless `insecure`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Serve TLS on loopback too (beyond loopback it is on anyway)."""
    server_names: list[str] = Field(default_factory=list, max_length=100)
    """More DNS names or IP addresses for the server certificate: the names agents dial."""
    enroll_listen: str = ""
    """host:port where agents without a certificate enroll (TLS, no client certificate);
    empty: the listen host, port + 1."""

    @field_validator("enroll_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return value and host_port(value, allow_port_zero=True)


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
    """Enroll any agent that asks, without a token. Honoured only while the collector listens
    on loopback (`remdiag up`); beyond loopback every enrollment needs a token."""
    tickets: TicketSettings = TicketSettings()
    limits: LimitSettings = LimitSettings()
    desk: DeskSettings = DeskSettings()
    """Priority matrix, starting tiers and SLA durations ([desk])."""
    """Sizes, lengths and per-agent rates the collector accepts ([limits])."""
    notify: NotifySettings = Field(default_factory=NotifySettings)
    """Webhooks on ticket events ([notify], [[notify.webhooks]])."""
    diagnostics: DiagnosticsPolicy = Field(default_factory=DiagnosticsPolicy)
    """On-demand diagnostics, auto-triage and the remediation opt-in ([diagnostics])."""
    retention: RetentionSettings = RetentionSettings()
    """How long raw results, hourly rollups, diagnostics and audit are kept ([retention])."""
    checks: dict[str, CheckPolicySettings] = Field(default_factory=dict)
    """Policy sent to every agent, by check id (e.g. [checks."disk.free_space"])."""

    insecure: bool = False
    """Listen beyond loopback without TLS. Agents' credentials then cross the network in the
    clear: for isolated test networks only."""
    tls: TlsSettings = TlsSettings()
    data_dir: Path | None = None
    """The collector's CA and server keys (directory 0700, keys 0600). Unset: the directory
    remdiag-collector-data next to the SQLite database, or in the working directory."""
    revocation_check_seconds: float = Field(2.0, ge=0.1, le=60)
    """How often the collector looks for revoked agents among its live streams."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value, allow_port_zero=True)

    @property
    def tls_active(self) -> bool:
        return self.tls.enabled or (self.listens_beyond_loopback and not self.insecure)

    @property
    def open_enrollment(self) -> bool:
        """Open enrollment as honoured: never beyond loopback."""
        enroll_host = self.enroll_listen_address.rpartition(":")[0]
        return (
            self.allow_open_enrollment
            and not self.listens_beyond_loopback
            and (not self.tls_active or is_loopback_host(enroll_host))
        )

    @property
    def data_path(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        try:
            url = make_url(self.database_url)
        except ArgumentError:
            url = None
        database = url.database if url is not None and url.get_backend_name() == "sqlite" else None
        if database and database != ":memory:":
            return Path(database).expanduser().parent / "remdiag-collector-data"
        return Path("remdiag-collector-data")

    @property
    def enroll_listen_address(self) -> str:
        """Where the enrollment port listens (TLS only)."""
        if self.tls.enroll_listen:
            return self.tls.enroll_listen
        host, port = self.listen.rpartition(":")[0], _port_of(self.listen)
        return f"{host}:{port + 1 if port else 0}"

    @property
    def certificate_names(self) -> list[str]:
        from collector.tls import default_server_names  # cryptography only when TLS is used

        return [*self.tls.server_names, *default_server_names(self.listen.rpartition(":")[0])]

    @property
    def listens_beyond_loopback(self) -> bool:
        return not is_loopback_host(self.listen.rpartition(":")[0])

    @model_validator(mode="after")
    def _safe_and_valid(self) -> CollectorSettings:
        if self.tls_active:
            port = _port_of(self.listen)
            if port == 65535 and not self.tls.enroll_listen:
                raise ValueError(
                    "tls.enroll_listen: the enrollment port defaults to the listen port + 1, "
                    "and 65535 has none: set tls.enroll_listen"
                )
            if port and self.enroll_listen_address == self.listen:
                raise ValueError("tls.enroll_listen: must differ from listen")
        for check_id, policy in self.checks.items():
            check_overrides(check_id, policy.thresholds)
        return self


def _port_of(address: str) -> int:
    return int(address.rpartition(":")[2])
