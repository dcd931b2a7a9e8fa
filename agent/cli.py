"""remdiag-agent: run the agent, or check this machine once and print what was found."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from agent import __version__
from agent.app import Agent, implied_thresholds
from agent.checks.registry import CHECKS
from agent.config import AgentSettings
from agent.facts.live import LiveFacts
from agent.plan import build_plan
from agent.runner import CheckRun, run_check
from remdiag.configfile import ConfigError, load_settings
from remdiag.vocabulary import CheckStatus

STATUS_STYLE = {
    CheckStatus.OK: "green",
    CheckStatus.WARNING: "yellow",
    CheckStatus.CRITICAL: "bold red",
    CheckStatus.UNKNOWN: "magenta",
}

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="REMDIAG_AGENT_CONFIG",
    help="TOML config file (env REMDIAG_AGENT_CONFIG).",
)


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
    """Run checks on schedule and stream results to the collector until stopped."""
    settings = load_config(config_path, collector=collector, state_dir=state_dir)
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


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def check(config_path: Path | None, as_json: bool) -> None:
    """Run every check once on this machine and show the results."""
    settings = load_config(config_path)
    plan = build_plan(CHECKS, settings.checks, None, implied_thresholds(settings))
    source = LiveFacts()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(plan.checks) or 1) as pool:
        runs = list(pool.map(lambda p: run_check(p, source), plan.checks))
    if as_json:
        click.echo(json.dumps([_as_dict(r) for r in runs], indent=2))
        return
    table = Table(title="remdiag: this machine's health")
    for column in ("check", "category", "status", "summary"):
        table.add_column(column)
    for r in runs:
        style = STATUS_STYLE[r.status]
        table.add_row(r.check_id, r.category.label, f"[{style}]{r.status.label}[/]", r.summary)
    console = Console()
    console.print(table)
    for r in runs:
        if r.remediation:
            console.print(f"[bold]{r.check_id}[/]: {r.remediation}")


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
