"""remdiag-agent: run the agent, or check this machine once and print what was found."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from agent import __version__, convert
from agent.app import Agent, implied_thresholds, limit_malloc_arenas
from agent.catalog import markdown as catalog_markdown
from agent.checks.registry import CHECKS
from agent.config import AgentSettings
from agent.enroll import (
    CaFileError,
    EnrollmentError,
    enroll,
    plaintext_refusal,
    read_ca_file,
    trusted_ca,
)
from agent.facts.live import LiveFacts
from agent.facts.machine import machine_facts
from agent.identity import load_identity
from agent.plan import build_plan
from agent.runner import CheckRun, run_check
from remdiag.configfile import ConfigError, load_settings
from remdiag.vocabulary import Category

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="REMDIAG_AGENT_CONFIG",
    help="TOML config file (env REMDIAG_AGENT_CONFIG).",
)


def state_dir_problem(state_dir: Path) -> str | None:
    """Why the agent could not keep its identity in `state_dir`, or None."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = state_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"{state_dir} is not a writable directory ({exc.strerror or exc})"
    return None


def load_config(path: Path | None, **overrides: Any) -> AgentSettings:
    try:
        return load_settings(
            AgentSettings, path, {k: v for k, v in overrides.items() if v is not None}
        )
    except ConfigError as exc:
        click.echo(f"remdiag-agent: {exc}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="remdiag-agent")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """The remdiag agent: watches this PC's health and reports it to the collector."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@config_option
@click.option("--collector", help="Collector HOST:PORT (env REMDIAG_AGENT_COLLECTOR).")
@click.option(
    "--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Identity directory."
)
def run(config_path: Path | None, collector: str | None, state_dir: Path | None) -> None:
    """Run checks on schedule and stream results to the collector until stopped.

    Uses the identity `remdiag-agent enroll` stored (and its collector, unless one is
    given); without one it enrolls by itself when enrollment_token is set or the collector
    allows open enrollment (loopback only).
    """
    base = load_config(config_path)
    settings = load_config(config_path, collector=collector, state_dir=state_dir)
    problem = state_dir_problem(settings.state_dir)
    if problem:
        click.echo(f"remdiag-agent: invalid option state_dir: {problem}", err=True)
        sys.exit(2)
    if collector is None and "collector" not in base.model_fields_set:
        settings = _with_enrolled_collector(settings)
    try:
        ca_pem = trusted_ca(settings.state_dir, settings.tls)
    except CaFileError as exc:
        _usage_error(f"invalid option tls.ca_file: {exc}")
    refusal = plaintext_refusal(settings.collector, ca_pem, settings.tls)
    if refusal:
        _usage_error(refusal)
    limit_malloc_arenas()
    agent = Agent(settings)
    logging.getLogger(__name__).info(
        "remdiag-agent %s on %s: %d checks, collector %s",
        __version__,
        agent.machine.hostname,
        len(agent.plan.checks),
        settings.collector,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(agent.run())


@main.command("enroll")
@config_option
@click.option("--collector", help="The collector's HOST:PORT (env REMDIAG_AGENT_COLLECTOR).")
@click.option(
    "--token",
    help="Enrollment token from the admin (remdiag token create --enroll). Prefer the "
    "environment variable REMDIAG_AGENT_ENROLLMENT_TOKEN: it stays out of shell history.",
)
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(path_type=Path),
    help="The collector's CA certificate (ca.pem in its data dir); needed beyond loopback.",
)
@click.option(
    "--enroll-address",
    help="HOST:PORT of the collector's enrollment port (default: the collector's port + 1).",
)
@click.option("--server-name", help="Name to check the collector's certificate against.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Identity directory."
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Plaintext to a collector beyond loopback that runs --insecure (test networks).",
)
def enroll_command(
    config_path: Path | None,
    collector: str | None,
    token: str | None,
    ca_file: Path | None,
    enroll_address: str | None,
    server_name: str | None,
    state_dir: Path | None,
    insecure: bool | None,
) -> None:
    """Exchange an enrollment token for this machine's identity.

    With TLS the agent makes its own key, sends a signing request, and keeps the client
    certificate and the collector's CA (pinned) in the state directory, owner-only.
    """
    base = load_config(config_path)
    tls_options = {
        "ca_file": ca_file,
        "enroll_address": enroll_address,
        "server_name": server_name,
        "insecure": insecure,
    }
    tls = {k: v for k, v in tls_options.items() if v is not None}
    settings = load_config(
        config_path,
        collector=collector,
        state_dir=state_dir,
        enrollment_token=token,
        tls={**base.tls.model_dump(), **tls} if tls else None,
    )
    if not settings.enrollment_token:
        _usage_error(
            "--token is required: an enrollment token from the admin (remdiag token create "
            "--enroll), or REMDIAG_AGENT_ENROLLMENT_TOKEN"
        )
    problem = state_dir_problem(settings.state_dir)
    if problem:
        _usage_error(f"invalid option state_dir: {problem}")
    try:
        ca_pem = read_ca_file(ca_file) if ca_file else trusted_ca(settings.state_dir, settings.tls)
    except CaFileError as exc:
        _usage_error(str(exc))
    refusal = plaintext_refusal(settings.collector, ca_pem, settings.tls)
    if refusal:
        _usage_error(refusal)
    machine = convert.machine_identity(machine_facts(settings.state_dir))
    try:
        identity = asyncio.run(
            enroll(
                collector=settings.collector,
                state_dir=settings.state_dir,
                token=settings.enrollment_token,
                machine=machine,
                ca_pem=ca_pem,
                tls=settings.tls,
            )
        )
    except EnrollmentError as exc:
        click.echo(f"remdiag-agent: {exc}", err=True)
        sys.exit(1)
    how = "TLS, certificate and pinned CA" if identity.has_certificate else "plaintext, loopback"
    click.echo(
        f"enrolled with {settings.collector} as agent {identity.agent_id} ({how}); "
        f"identity in {settings.state_dir}"
    )


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    type=click.Choice([c.label for c in Category]),
    help="Only checks of this category (repeatable).",
)
@click.option(
    "--check",
    "check_ids",
    multiple=True,
    metavar="ID",
    help="Only this check, e.g. disk.free_space (repeatable).",
)
def check(
    config_path: Path | None,
    as_json: bool,
    categories: tuple[str, ...],
    check_ids: tuple[str, ...],
) -> None:
    """Run every check once on this machine and show the results by category."""
    settings = load_config(config_path)
    unknown = sorted(set(check_ids) - set(CHECKS))
    if unknown:
        click.echo(
            f"remdiag-agent: unknown check {', '.join(unknown)} "
            f"(known: {', '.join(sorted(CHECKS))})",
            err=True,
        )
        sys.exit(2)
    plan = build_plan(CHECKS, settings.checks, None, implied_thresholds(settings))
    chosen = [
        p
        for p in plan.checks
        if (not categories or p.check.category.label in categories)
        and (not check_ids or p.check.id in check_ids)
    ]
    source = LiveFacts(state_dir=settings.state_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(chosen) or 1)) as pool:
        runs = list(pool.map(lambda p: run_check(p, source), chosen))
    if as_json:
        click.echo(json.dumps([_as_dict(r) for r in runs], indent=2))
        return
    from agent.report import show_report  # rich only where a person reads the output

    show_report(runs)


@main.command()
@click.option("--markdown", is_flag=True, help="The full catalog as Markdown (docs/checks.md).")
def catalog(markdown: bool) -> None:
    """List every check this agent knows: id, category, interval and thresholds."""
    if markdown:
        click.echo(catalog_markdown(CHECKS), nl=False)
        return
    from agent.report import show_catalog

    show_catalog(CHECKS)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Newest N runs."
)
def history(config_path: Path | None, as_json: bool, limit: int) -> None:
    """Show what technicians ran on this PC (diagnostics and remediation), when, and by whom."""
    from agent.diagnostics.history import HISTORY_FILE, History

    settings = load_config(config_path)
    path = settings.state_dir / HISTORY_FILE
    rows = History(path, settings.diagnostics.history_max).rows(limit) if path.exists() else []
    from agent.diagnostics.report import row_json, show_history  # rich only for a person

    if as_json:
        click.echo(json.dumps([row_json(r) for r in rows], indent=2))
    elif not rows:
        click.echo("No diagnostics have been run on this PC.")
    else:
        show_history(rows)


def _as_dict(r: CheckRun) -> dict[str, Any]:
    return {
        "check_id": r.check_id,
        "category": r.category.label,
        "status": r.status.label,
        "summary": r.summary,
        "values": [{"name": v.name, "value": v.value, "unit": v.unit} for v in r.values],
        "thresholds": r.thresholds,
        "remediation": r.remediation,
        "observed_at": r.observed_at.isoformat(),
    }


def _with_enrolled_collector(settings: AgentSettings) -> AgentSettings:
    """No collector was configured: use the one the stored identity was enrolled with."""
    try:
        identity = load_identity(settings.state_dir)
    except RuntimeError:
        return settings  # the transport says so and enrolls again
    if identity is None or identity.collector == settings.collector:
        return settings
    return settings.model_copy(update={"collector": identity.collector})


def _usage_error(message: str) -> NoReturn:
    click.echo(f"remdiag-agent: {message}", err=True)
    sys.exit(2)
