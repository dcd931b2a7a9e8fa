"""agent/config.py and the remdiag-agent CLI's handling of config files and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.config import AgentSettings
from remdiag.configfile import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file() -> None:
    settings = load_settings(AgentSettings, None)
    assert settings.collector == "127.0.0.1:50051"
    assert settings.checks == {}


def test_file_values_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        'collector = "collector.test:7000"\nbatch_max_results = 50\n'
        '[checks."disk.free_space"]\ninterval_seconds = 30\n'
        "thresholds = { max_used_percent_warning = 70 }\n",
    )
    settings = load_settings(AgentSettings, path)
    assert settings.collector == "collector.test:7000"
    assert settings.checks["disk.free_space"].interval_seconds == 30
    monkeypatch.setenv("REMDIAG_AGENT_BATCH_MAX_RESULTS", "7")
    assert load_settings(AgentSettings, path).batch_max_results == 7


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("batch_max_results = 0", "batch_max_results"),
        ('collector = "no-port"', "collector"),
        ("no_such_option = 1", "no_such_option"),
        ('[checks."disk.nope"]\nenabled = true', "checks.disk.nope"),
        (
            '[checks."disk.free_space"]\nthresholds = { max_used_percent_warning = 101 }',
            "checks.disk.free_space.thresholds.max_used_percent_warning",
        ),
        ("collector = [", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_option(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(AgentSettings, write(tmp_path, text))
    message = str(raised.value)
    assert named in message
    assert "\n" not in message


def test_cli_exits_2_with_the_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["check", "--config", str(write(tmp_path, "batch_max_results = -1"))]
    )
    assert result.exit_code == 2
    assert "batch_max_results" in result.output
    assert "Traceback" not in result.output


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_an_environment_variable_that_is_not_json_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMDIAG_AGENT_TLS", "{not json")
    with pytest.raises(ConfigError) as raised:
        load_settings(AgentSettings, None)
    assert "invalid environment variable" in str(raised.value)
    assert '"tls"' in str(raised.value)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
