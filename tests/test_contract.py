"""The v1 contract: committed generated code matches the .proto files; enums map one-to-one."""

from __future__ import annotations

import subprocess
import sys
from enum import IntEnum
from pathlib import Path

import pytest

from remdiag import vocabulary
from remdiag.v1 import common_pb2

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "protos" / "remdiag" / "v1"


def test_regenerating_the_code_changes_nothing(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "remdiag" / "v1").iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in GENERATED.iterdir()
        if p.name.endswith((".py", ".pyi")) and "_pb2" in p.name
    }
    assert sorted(fresh) == sorted(committed), "generated files differ: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code, run `make proto`: {stale}"


@pytest.mark.parametrize(
    ("python_enum", "proto_enum", "prefix"),
    [
        (vocabulary.CheckStatus, common_pb2.CheckStatus, "CHECK_STATUS_"),
        (vocabulary.Category, common_pb2.Category, "CATEGORY_"),
        (vocabulary.Severity, common_pb2.Severity, "SEVERITY_"),
        (vocabulary.TicketState, common_pb2.TicketState, "TICKET_STATE_"),
        (vocabulary.Priority, common_pb2.Priority, "PRIORITY_"),
        (vocabulary.Tier, common_pb2.Tier, "TIER_"),
        (vocabulary.DiagnosticState, common_pb2.DiagnosticState, "DIAGNOSTIC_STATE_"),
    ],
)
def test_python_enums_match_the_proto(
    python_enum: type[IntEnum], proto_enum: object, prefix: str
) -> None:
    proto_values = {
        name.removeprefix(prefix): number
        for name, number in proto_enum.items()  # type: ignore[attr-defined]
        if not name.endswith("_UNSPECIFIED")
    }
    assert {m.name: int(m) for m in python_enum} == proto_values
