"""Tests of the software facts: parsers on recorded outputs, gatherers on this machine."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "software"


def fixture(name: str) -> str:
    """A recorded output from tests/fixtures/software, as text (CRLF kept)."""
    return (FIXTURES / name).read_bytes().decode("utf-8")
