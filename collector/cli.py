"""remdiag: run the collector, or work the fleet and its tickets from the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from collector import __version__
from collector.client import ConsoleClient, ConsoleError
from collector.config import DEFAULT_PORT, CollectorSettings
from collector.server import serve
from collector.up import run_up
from collector.views import agents_table, as_json, ticket_view, tickets_table
from remdiag.configfile import ConfigError, load_settings

T = TypeVar("T")

collector_option = click.option(
    "--collector",
    "address",
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    envvar="REMDIAG_COLLECTOR_ADDRESS",
    help="Collector HOST:PORT (env REMDIAG_COLLECTOR_ADDRESS).",
)
json_option = click.option("--json", "as_json_", is_flag=True, help="Print JSON.")


@click.group()
@click.version_option(__version__, prog_name="remdiag")
def main() -> None:
    """remdiag: proactive remote diagnostics for technical support."""


@main.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Loopback port (0: any).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".remdiag"),
    show_default=True,
    help="Where the database, the agent's identity and the log go.",
)
@click.option("--demo", is_flag=True, help="Make the local disk check fail, to see a ticket open.")
@click.option(
    "--agent-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML config for the local agent (its collector and state dir are set by up).",
)
def up(port: int, data_dir: Path, demo: bool, agent_config: Path | None) -> None:
    """Run the collector (SQLite, loopback) and a local agent, with a live view."""
    run_up(data_dir, port, demo, agent_config)


@main.group()
def collector() -> None:
    """The collector service."""


@collector.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="REMDIAG_COLLECTOR_CONFIG",
    help="TOML config file (env REMDIAG_COLLECTOR_CONFIG).",
)
@click.option("--listen", help="HOST:PORT to listen on (env REMDIAG_COLLECTOR_LISTEN).")
@click.option("--database-url", help="SQLAlchemy URL (env REMDIAG_COLLECTOR_DATABASE_URL).")
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Allow plaintext beyond loopback (trusted test networks only).",
)
def collector_serve(
    config_path: Path | None, listen: str | None, database_url: str | None, insecure: bool | None
) -> None:
    """Serve AgentService and ConsoleService until stopped."""
    overrides = {"listen": listen, "database_url": database_url, "insecure": insecure}
    try:
        settings = load_settings(
            CollectorSettings, config_path, {k: v for k, v in overrides.items() if v}
        )
    except ConfigError as exc:
        click.echo(f"remdiag: {exc}", err=True)
        sys.exit(2)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.listens_beyond_loopback:
        logging.getLogger("remdiag").warning(
            "INSECURE: listening on %s without TLS; credentials and results cross the network "
            "in the clear",
            settings.listen,
        )
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(_serve_forever(settings))
        except OSError as exc:
            click.echo(f"remdiag: {exc}", err=True)
            sys.exit(1)


async def _serve_forever(settings: CollectorSettings) -> None:
    running = await serve(settings)
    try:
        await running.server.wait_for_termination()
    finally:
        await running.stop()


@main.command()
@collector_option
@json_option
def agents(address: str, as_json_: bool) -> None:
    """List the machines the collector knows."""
    found = _console(address, lambda c: c.list_agents())
    if as_json_:
        click.echo(json.dumps([as_json(a) for a in found], indent=2))
    else:
        Console().print(agents_table(found))


@main.command()
@collector_option
@json_option
@click.option("--open", "open_only", is_flag=True, help="Only tickets still open.")
@click.option("--machine", "agent_id", default="", help="Only this agent id.")
def tickets(address: str, as_json_: bool, open_only: bool, agent_id: str) -> None:
    """List tickets, newest first."""
    found = _console(address, lambda c: c.list_tickets(open_only=open_only, agent_id=agent_id))
    if as_json_:
        click.echo(json.dumps([as_json(t) for t in found], indent=2))
    else:
        Console().print(tickets_table(found, title="Open tickets" if open_only else "Tickets"))


@main.command()
@collector_option
@json_option
@click.argument("ticket_id", type=click.IntRange(min=1, max=2**63 - 1))
def ticket(address: str, as_json_: bool, ticket_id: int) -> None:
    """Show one ticket: its timeline and evidence."""
    detail = _console(address, lambda c: c.get_ticket(ticket_id))
    if as_json_:
        click.echo(json.dumps(as_json(detail), indent=2))
    else:
        Console().print(ticket_view(detail))


def _console(address: str, call: Callable[[ConsoleClient], T]) -> T:
    try:
        with ConsoleClient(address) as client:
            return call(client)
    except ConsoleError as exc:
        click.echo(f"remdiag: {exc}", err=True)
        sys.exit(1)
