"""Remediation: refused unless enabled and listed locally; clear_temp never leaves its directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.config import DiagnosticsSettings
from remdiag.vocabulary import DiagnosticState
from tests.agent.diagnostics.conftest import Run

SYSTEMD = os.path.isdir("/run/systemd/system")
DNS_CACHE = os.path.isdir("/run/systemd/resolve") or os.path.exists("/var/run/nscd/socket")
ALL = ["clear_temp", "restart_service", "flush_dns_cache"]


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then), follow_symlinks=False)


async def test_refused_unless_enabled_and_listed(run: Run, tmp_path: Path) -> None:
    off = await run("flush_dns_cache")
    assert off.state is DiagnosticState.REFUSED
    assert "remediation is not enabled" in off.error
    unlisted = await run(
        "flush_dns_cache",
        settings=DiagnosticsSettings(remediation_enabled=True, remediation_actions=["clear_temp"]),
    )
    assert unlisted.state is DiagnosticState.REFUSED
    assert "not in its config" in unlisted.error


async def test_clear_temp_removes_only_old_files_and_never_follows_links(
    run: Run, tmp_path: Path
) -> None:
    temp = tmp_path / "temp"
    (temp / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("keep me")
    _age(precious, 100)
    old, new, old_nested = temp / "old.log", temp / "new.log", temp / "sub" / "old.tmp"
    old.write_bytes(b"x" * 1000)
    new.write_bytes(b"y" * 10)
    old_nested.write_bytes(b"z" * 500)
    for path in (old, old_nested):
        _age(path, 48)
    link_dir, link_file = temp / "to-outside", temp / "precious-link"
    link_dir.symlink_to(outside)
    link_file.symlink_to(precious)
    _age(link_dir, 100)
    _age(link_file, 100)
    settings = DiagnosticsSettings(
        remediation_enabled=True, remediation_actions=ALL, temp_dirs=[temp]
    )

    dry = await run("clear_temp", {"older_than_hours": 24, "dry_run": True}, settings)
    assert dry.state is DiagnosticState.DONE, dry
    assert dry.output["files_removed"] == 2 and old.exists()

    outcome = await run("clear_temp", {"older_than_hours": 24}, settings)
    assert outcome.state is DiagnosticState.DONE, outcome
    assert outcome.output["bytes_freed"] == 1500 and outcome.output["files_removed"] == 2
    assert not old.exists() and not old_nested.exists()
    assert new.exists()
    assert link_dir.is_symlink() and link_file.is_symlink()
    assert precious.read_text() == "keep me"
    assert outcome.output["directories"][0]["links_skipped"] == 2


async def test_clear_temp_only_in_configured_dirs(run: Run, tmp_path: Path) -> None:
    settings = DiagnosticsSettings(remediation_enabled=True, remediation_actions=ALL)
    none = await run("clear_temp", {}, settings)
    assert none.state is DiagnosticState.FAILED and "no temp_dirs" in none.error
    configured = settings.model_copy(update={"temp_dirs": [tmp_path / "a"]})
    other = await run("clear_temp", {"directory": str(tmp_path / "b")}, configured)
    assert other.state is DiagnosticState.FAILED
    assert "not one of the configured temp_dirs" in other.error


async def test_restart_service_allowlist_and_no_systemd(run: Run) -> None:
    settings = DiagnosticsSettings(
        remediation_enabled=True, remediation_actions=ALL, services_allowed=["cups"]
    )
    refused = await run("restart_service", {"name": "sshd"}, settings)
    assert refused.state is DiagnosticState.FAILED
    assert "not in the agent's services_allowed" in refused.error
    if SYSTEMD:
        return  # never restart a real service from a test
    outcome = await run("restart_service", {"name": "cups"}, settings)
    assert outcome.state is DiagnosticState.FAILED
    assert "systemd is not running" in outcome.error


async def test_flush_dns_cache_fails_with_the_reason_when_there_is_none(run: Run) -> None:
    if DNS_CACHE:
        return  # a DNS cache runs here; flushing it for real is not a test's business
    settings = DiagnosticsSettings(remediation_enabled=True, remediation_actions=ALL)
    outcome = await run("flush_dns_cache", {}, settings)
    assert outcome.state is DiagnosticState.FAILED
    assert "no DNS cache to flush" in outcome.error
