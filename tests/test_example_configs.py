"""The example configs in docs/ load, and their commented values are the real defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from agent.config import AgentSettings
from collector.config import CollectorSettings
from remdiag.configfile import LayeredSettings, load_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
TOP_LEVEL_DEFAULT = re.compile(r"^# ([a-z_]+ = .+)$")


@pytest.mark.parametrize(
    ("name", "model"), [("agent.toml", AgentSettings), ("collector.toml", CollectorSettings)]
)
def test_example_loads_and_documents_defaults(name: str, model: type[LayeredSettings]) -> None:
    path = EXAMPLES / name
    loaded = load_settings(model, path)
    defaults = model()
    assert loaded == defaults
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.removeprefix("# ").startswith("["):
            section = line.removeprefix("# ").strip("[]")
        match = TOP_LEVEL_DEFAULT.match(line)
        if not match or section.startswith("checks") or line.startswith('# database_url = "post'):
            continue
        key, value = next(iter(tomllib.loads(match.group(1)).items()))
        current = getattr(getattr(defaults, section) if section else defaults, key)
        if key == "state_dir":
            assert str(current).endswith(value.removeprefix("~/")), key
        else:
            assert current == value, f"{name}: {section}.{key} documented as {value!r}"
