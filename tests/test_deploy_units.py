"""deploy/*.service: the systemd units parse as INI and start console scripts that exist."""

from __future__ import annotations

import configparser
import shlex
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
UNITS = {
    "remdiag-collector.service": ("remdiag", ["collector", "serve"], "/etc/remdiag/collector.toml"),
    "remdiag-agent.service": ("remdiag-agent", ["run"], "/etc/remdiag/agent.toml"),
}


def parse(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((ROOT / "deploy" / name).read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_is_hardened_and_restarts(name: str) -> None:
    unit = parse(name)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert service["User"] not in ("", "root")
    assert service["StateDirectory"]
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("name", sorted(UNITS))
def test_exec_start_names_an_existing_console_script_and_command(name: str) -> None:
    script, command, config = UNITS[name]
    argv = shlex.split(parse(name)["Service"]["ExecStart"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == script
    assert script in scripts
    assert argv[1:] == [*command, "--config", config]
    module, _, attribute = scripts[script].partition(":")
    entry = getattr(__import__(module, fromlist=[attribute]), attribute)
    # The command and its --config option exist (--help stops before anything runs).
    outcome = CliRunner().invoke(entry, [*command, "--help"])
    assert outcome.exit_code == 0, outcome.output
    assert "--config" in outcome.output
