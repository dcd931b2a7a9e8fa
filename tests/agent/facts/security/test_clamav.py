"""ClamAV presence from recorded findings, and database files found on disk."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from agent.facts.security import clamav
from agent.facts.security.clamav import DatabaseFile

NOW = 1_700_000_000.0
DAY = 86400.0


def test_nothing_installed_is_absent() -> None:
    assert clamav.describe((), (), (), NOW) is None


def test_daemon_running_with_fresh_databases() -> None:
    databases = (
        DatabaseFile("/var/lib/clamav/main.cvd", NOW - 40 * DAY),
        DatabaseFile("/var/lib/clamav/daily.cld", NOW - 0.5 * DAY),
    )
    product = clamav.describe(
        ("clamd", "freshclam"), ("clamd", "freshclam", "bash"), databases, NOW
    )
    assert product is not None
    assert (product.name, product.enabled, product.definitions_age_days) == ("ClamAV", True, 0.5)
    assert product.definitions_updated == datetime.fromtimestamp(NOW - 0.5 * DAY, UTC)
    assert product.detail == (
        "programs: clamd, freshclam; running: clamd, freshclam; newest database daily.cld"
    )


def test_on_demand_scanner_without_daemon_or_databases() -> None:
    product = clamav.describe(("clamscan",), (), (), NOW)
    assert product is not None
    assert product.enabled is None and product.definitions_age_days is None
    assert product.detail == (
        "programs: clamscan; no ClamAV daemon running; no signature database found"
    )


def test_database_files_are_found_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "daily.cld").write_bytes(b"x")
    (tmp_path / "main.cvd").write_bytes(b"x")
    (tmp_path / "freshclam.dat").write_bytes(b"x")
    os.utime(tmp_path / "main.cvd", (NOW, NOW))
    found = sorted(
        clamav.database_files((str(tmp_path), str(tmp_path / "missing"))), key=lambda f: f.path
    )
    assert [os.path.basename(f.path) for f in found] == ["daily.cld", "main.cvd"]
    assert found[1].mtime == NOW


def test_running_programs_reads_this_machines_process_list() -> None:
    # Nothing is asserted about ClamAV; the names asked for are the only ones answered.
    assert set(clamav.running_programs({"clamd", "python", "pytest"})) <= {
        "clamd",
        "python",
        "pytest",
    }
