"""collector/config.py: safe defaults, policy checked against the check catalog at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import CollectorSettings
from remdiag.configfile import ConfigError, load_settings


def load(tmp_path: Path, text: str) -> CollectorSettings:
    path = tmp_path / "collector.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(CollectorSettings, path)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[checks."disk.nope"]\nenabled = true', "checks.disk.nope: unknown check"),
        (
            '[checks."disk.free_space"]\nthresholds = { max_used_percent_warning = "lots" }',
            "checks.disk.free_space.thresholds.max_used_percent_warning",
        ),
        (
            '[checks."uptime.reboot_overdue"]\nthresholds = { max_uptime_days_critical = inf }',
            "max_uptime_days_critical",
        ),
        # Beyond loopback TLS is on (tests/collector/test_tls.py); what it needs must be valid.
        ('listen = "0.0.0.0:65535"', "tls.enroll_listen"),
        ('[tls]\nenabled = true\nenroll_listen = "nowhere"', "tls.enroll_listen"),
    ],
)
def test_refused_at_start_with_the_option_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load(tmp_path, text)


def test_beyond_loopback_only_when_insecure_is_explicit(tmp_path: Path) -> None:
    settings = load(tmp_path, 'listen = "0.0.0.0:50051"\ninsecure = true')
    assert settings.listens_beyond_loopback
    for local in ("127.0.0.1:1", "localhost:1", "[::1]:1"):
        assert not CollectorSettings(listen=local).listens_beyond_loopback


def test_a_valid_policy_loads(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[checks."disk.free_space"]\ninterval_seconds = 600\n'
        "thresholds = { max_used_percent_warning = 80 }",
    )
    assert settings.checks["disk.free_space"].interval_seconds == 600


def test_open_enrollment_is_never_honoured_on_an_outside_enrollment_port() -> None:
    local = CollectorSettings(listen="127.0.0.1:50051", tls={"enabled": True})
    assert local.open_enrollment
    exposed = CollectorSettings(
        listen="127.0.0.1:50051", tls={"enabled": True, "enroll_listen": "0.0.0.0:50052"}
    )
    assert not exposed.open_enrollment
