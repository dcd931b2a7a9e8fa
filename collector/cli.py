"""remdiag: run the collector, or work the fleet and its tickets from the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from collector import __version__, audit, console_tokens, convert, fleet, policies, tokens
from collector.client import ConsoleClient, ConsoleError, DiagnosticWaitTimeout
from collector.config import DEFAULT_PORT, CollectorSettings
from collector.console_tokens import Role
from collector.server import serve
from collector.store.runner import Store
from collector.tls import PkiError
from collector.up import run_up
from collector.views import (
    REPORT_CSV_HEADER,
    actions_table,
    agents_table,
    as_json,
    diagnostic_line,
    diagnostics_table,
    recurring_table,
    report_csv_rows,
    report_json,
    report_view,
    short_version,
    task_history_table,
    tasks_table,
    ticket_view,
    tickets_table,
    windows_table,
)
from collector.windows import WindowError, start_time
from remdiag.configfile import ConfigError, load_settings
from remdiag.v1 import console_pb2
from remdiag.vocabulary import Category, DiagnosticState, Priority, Severity, TicketState, Tier

T = TypeVar("T")

DEFAULT_TOKEN_FILE = Path(".remdiag") / "console-token"
"""Where `remdiag up` (default data dir) writes its admin token, so the CLI beside it just works."""
_TOKEN_KEY = "remdiag.console_token"


def _remember_token(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:  # a group's --token stays for its subcommand
        ctx.meta[_TOKEN_KEY] = value


def collector_option(command: Callable[..., T]) -> Callable[..., T]:
    """--collector HOST:PORT, and --token: what every console command needs to reach it."""
    command = click.option(
        "--token",
        expose_value=False,
        callback=_remember_token,
        help="Console token (else env REMDIAG_TOKEN, else the file named by env "
        "REMDIAG_TOKEN_FILE, default .remdiag/console-token as `remdiag up` writes it).",
    )(command)
    return click.option(
        "--collector",
        "address",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        show_default=True,
        envvar="REMDIAG_COLLECTOR_ADDRESS",
        help="Collector HOST:PORT (env REMDIAG_COLLECTOR_ADDRESS).",
    )(command)


json_option = click.option("--json", "as_json_", is_flag=True, help="Print JSON.")


def terminal(stderr: bool = False) -> Console:
    """Where tables go. Markup off: host names, summaries and comments are data, and a "[/x]"
    in them must print as it is, not fail as a closing tag."""
    return Console(markup=False, stderr=stderr)


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
    help="Plaintext beyond loopback instead of TLS (trusted test networks only).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the CA and server keys live (env REMDIAG_COLLECTOR_DATA_DIR).",
)
def collector_serve(
    config_path: Path | None,
    listen: str | None,
    database_url: str | None,
    insecure: bool | None,
    data_dir: Path | None,
) -> None:
    """Serve AgentService and ConsoleService until stopped.

    Beyond loopback the collector serves TLS: on first start it creates its CA and server
    certificate in the data dir. Agents enroll on the enrollment port (listen port + 1 unless
    tls.enroll_listen says otherwise) with a token and the CA file DATA_DIR/ca.pem.
    """
    overrides = {
        "listen": listen,
        "database_url": database_url,
        "insecure": insecure,
        "data_dir": data_dir,
    }
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
    log = logging.getLogger("remdiag")
    if settings.listens_beyond_loopback and not settings.tls_active:
        log.warning(
            "INSECURE: listening on %s without TLS; credentials and results cross the network "
            "in the clear",
            settings.listen,
        )
    if settings.listens_beyond_loopback and settings.allow_open_enrollment:
        log.info(
            "open enrollment is off beyond loopback: agents enroll with a token "
            "(remdiag token create --enroll)"
        )
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(_serve_forever(settings))
        except PkiError as exc:
            click.echo(f"remdiag: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            click.echo(f"remdiag: {exc}", err=True)
            sys.exit(1)


async def _serve_forever(settings: CollectorSettings) -> None:
    running = await serve(settings)
    # SIGTERM (systemd, docker, kill) stops as Ctrl-C does: streams end, the store closes.
    # Without a handler SIGTERM ended the process at once, like a crash.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        # Not server.wait_for_termination(): cancelling that waiter cancels the shutdown too.
        await stopping.wait()
        logging.getLogger("remdiag").info("stopping: closing streams and the store")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await running.stop()


@main.group(invoke_without_command=True)
@collector_option
@json_option
@click.pass_context
def agents(ctx: click.Context, address: str, as_json_: bool) -> None:
    """List the machines the collector knows (or revoke / reinstate one)."""
    if ctx.invoked_subcommand is not None:
        return
    found = _console(address, lambda c: c.list_agents())
    if as_json_:
        click.echo(json.dumps([as_json(a) for a in found], indent=2))
    else:
        terminal().print(agents_table(found))


TICKET_SORTS = {
    "urgency": console_pb2.TICKET_SORT_URGENCY,
    "newest": console_pb2.TICKET_SORT_NEWEST,
}


def _names(enum: type[IntEnum]) -> click.Choice[str]:
    return click.Choice([m.name.lower() for m in enum], case_sensitive=False)


@main.command()
@collector_option
@json_option
@click.option("--open", "open_only", is_flag=True, help="Only tickets still open.")
@click.option("--state", "states", multiple=True, type=_names(TicketState), help="Repeatable.")
@click.option("--priority", "priorities", multiple=True, type=_names(Priority), help="p1..p4.")
@click.option("--tier", "tiers", multiple=True, type=_names(Tier), help="l1..l4.")
@click.option("--category", "categories", multiple=True, type=_names(Category))
@click.option("--assignee", default="", help="Only tickets assigned to this person.")
@click.option("--mine", is_flag=True, help="Only tickets assigned to you (your token's name).")
@click.option("--unassigned", is_flag=True, help="Only tickets nobody has taken.")
@click.option("--machine", "agent_id", default="", help="Only this agent id.")
@click.option("--breached", is_flag=True, help="Only tickets that missed an SLA deadline.")
@click.option(
    "--sort",
    type=click.Choice(["urgency", "newest"]),
    default="urgency",
    show_default=True,
    help="urgency: nearest SLA deadline first (missed first of all), then priority.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
def tickets(
    address: str,
    as_json_: bool,
    open_only: bool,
    states: tuple[str, ...],
    priorities: tuple[str, ...],
    tiers: tuple[str, ...],
    categories: tuple[str, ...],
    assignee: str,
    mine: bool,
    unassigned: bool,
    agent_id: str,
    breached: bool,
    sort: str,
    limit: int,
) -> None:
    """The ticket queue, most urgent first; every filter narrows it."""
    if mine and assignee:
        _fail("give --mine or --assignee, not both", 2)
    request = console_pb2.ListTicketsRequest(
        open_only=open_only,
        agent_id=agent_id,
        states=[TicketState[s.upper()] for s in states],  # type: ignore[misc]
        priorities=[Priority[p.upper()] for p in priorities],  # type: ignore[misc]
        tiers=[Tier[t.upper()] for t in tiers],  # type: ignore[misc]
        categories=[Category[c.upper()] for c in categories],  # type: ignore[misc]
        assignee=assignee,
        mine=mine,
        unassigned_only=unassigned,
        breached_only=breached,
        sort=console_pb2.TICKET_SORT_NEWEST
        if sort == "newest"
        else console_pb2.TICKET_SORT_URGENCY,
        limit=limit,
    )
    found = _console(address, lambda c: c.list_tickets(request))
    if as_json_:
        click.echo(json.dumps([as_json(t) for t in found], indent=2))
    else:
        terminal().print(tickets_table(found, title="Open tickets" if open_only else "Tickets"))


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
        terminal().print(ticket_view(detail))


def ticket_action(command: Callable[..., None]) -> click.Command:
    """A `remdiag ACTION TICKET_ID ...` command: the console address, --json, the id.

    The actor is the holder of the console token: its name goes into the ticket's timeline."""
    for decorate in (
        click.argument("ticket_id", type=click.IntRange(min=1, max=2**63 - 1)),
        json_option,
        collector_option,
    ):
        command = decorate(command)
    return main.command()(command)


def _act(address: str, as_json_: bool, request: console_pb2.UpdateTicketRequest) -> None:
    detail = _console(address, lambda c: c.update_ticket(request))
    if as_json_:
        click.echo(json.dumps(as_json(detail), indent=2))
        return
    t = detail.ticket
    latest = detail.events[-1].message if detail.events else ""
    click.echo(
        f"ticket {t.id}: {TicketState(t.state).label}, {Tier(t.tier).name}, "
        f"{t.assignee or 'unassigned'}: {latest}"
    )


@ticket_action
def take(address: str, as_json_: bool, ticket_id: int) -> None:
    """Take a ticket: assign it to yourself and acknowledge it (its first response)."""
    request = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, take=console_pb2.TakeTicket())
    _act(address, as_json_, request)


@ticket_action
@click.argument("assignee")
def assign(address: str, as_json_: bool, ticket_id: int, assignee: str) -> None:
    """Assign a ticket to a technician."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, assign=console_pb2.AssignTicket(assignee=assignee)
    )
    _act(address, as_json_, request)


@ticket_action
def start(address: str, as_json_: bool, ticket_id: int) -> None:
    """Mark a ticket in progress (yours, if nobody has it)."""
    request = console_pb2.UpdateTicketRequest(ticket_id=ticket_id, start=console_pb2.StartTicket())
    _act(address, as_json_, request)


@ticket_action
@click.argument("text")
def comment(address: str, as_json_: bool, ticket_id: int, text: str) -> None:
    """Add a comment to a ticket's timeline."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, comment=console_pb2.CommentTicket(text=text)
    )
    _act(address, as_json_, request)


@ticket_action
@click.option("--note", default="", help="Why it needs the next tier.")
def escalate(address: str, as_json_: bool, ticket_id: int, note: str) -> None:
    """Send a ticket up one tier (L1 -> L2 -> L3 -> L4); it becomes unassigned."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, escalate=console_pb2.EscalateTicket(note=note)
    )
    _act(address, as_json_, request)


@ticket_action
@click.option("--note", required=True, help="What was wrong and what fixed it.")
def resolve(address: str, as_json_: bool, ticket_id: int, note: str) -> None:
    """Resolve a ticket, with a note for the record."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, resolve=console_pb2.ResolveTicket(note=note)
    )
    _act(address, as_json_, request)


@ticket_action
@click.option("--note", default="", help="Why (e.g. duplicate, will not fix).")
def close(address: str, as_json_: bool, ticket_id: int, note: str) -> None:
    """Close a ticket for good (a resolved one, or an open one that needs no work)."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, close=console_pb2.CloseTicket(note=note)
    )
    _act(address, as_json_, request)


@ticket_action
@click.option("--note", default="", help="Why it is not done.")
def reopen(address: str, as_json_: bool, ticket_id: int, note: str) -> None:
    """Reopen a resolved or closed ticket, with fresh SLA deadlines."""
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, reopen=console_pb2.ReopenTicket(note=note)
    )
    _act(address, as_json_, request)


def console_token() -> str | None:
    """The console token: --token, else env REMDIAG_TOKEN, else the file env REMDIAG_TOKEN_FILE
    names (default .remdiag/console-token); None when there is none."""
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(_TOKEN_KEY) if ctx is not None else None
    if given:
        return str(given).strip()
    if os.environ.get("REMDIAG_TOKEN"):
        return os.environ["REMDIAG_TOKEN"].strip()
    path = Path(os.environ.get("REMDIAG_TOKEN_FILE") or DEFAULT_TOKEN_FILE)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        _fail(f"cannot read the console token file {path}: {exc.strerror}", 2)


def _console(address: str, call: Callable[[ConsoleClient], T]) -> T:
    try:
        with ConsoleClient(address, console_token()) as client:
            return call(client)
    except ConsoleError as exc:
        click.echo(f"remdiag: {exc}", err=True)
        sys.exit(1)


@main.command()
@collector_option
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV rows: section,key,value.")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="The period, ending now: 30m, 24h, 7d, 2w (up to 366d).",
)
def report(address: str, as_json_: bool, as_csv: bool, since: str) -> None:
    """The support record: the tickets opened in the period and how they went.

    \b
    Tickets by category, priority, tier, check and machine (top 10), volume per UTC day,
    first-response and resolution times (median, p90), resolution rate, auto-resolved vs
    resolved by a technician, and SLA compliance. README.md ("The support record") defines
    each figure. --csv prints one flat table (section,key,value; rates as fractions,
    durations in seconds).
    """
    if as_json_ and as_csv:
        raise click.UsageError("--json and --csv cannot be used together: choose one")
    try:
        period = tokens.parse_duration(since)
    except ValueError as exc:
        _fail(f"--since: {exc}", 2)
    found = _console(address, lambda c: c.get_report(int(period.total_seconds())))
    if as_json_:
        click.echo(json.dumps(report_json(found), indent=2))
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(REPORT_CSV_HEADER)
        writer.writerows(report_csv_rows(found))
        click.echo(out.getvalue(), nl=False)
    else:
        terminal().print(report_view(found))


@main.group(invoke_without_command=True)
@collector_option
@json_option
@click.pass_context
def windows(ctx: click.Context, address: str, as_json_: bool) -> None:
    """List maintenance windows (or create / delete one).

    While a window is active, no ticket opens on the machines it covers (their results are still
    stored) and the SLA clocks of their open tickets pause.
    """
    if ctx.invoked_subcommand is not None:
        return
    found = _console(address, lambda c: c.list_windows())
    if as_json_:
        click.echo(json.dumps([as_json(w) for w in found], indent=2))
    else:
        terminal().print(windows_table(found))


@windows.command("create")
@collector_option
@json_option
@click.option("--name", required=True, help="What it is for, e.g. 'patch night'.")
@click.option(
    "--start", help="One-off: ISO 8601 start; without an offset it is read in --timezone."
)
@click.option(
    "--cron",
    help="Recurring: minute hour day month weekday (0 or 7 is Sunday), e.g. '0 2 * * 0'.",
)
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="IANA timezone the cron and a --start without offset are read in.",
)
@click.option("--duration", required=True, help="How long each time: 30m, 2h, 1d (up to 31d).")
@click.option("--tag", "tags", multiple=True, help="Cover the machines with this tag.")
@click.option("--machine", "agent_ids", multiple=True, help="Cover this agent id.")
@click.option("--all", "all_machines", is_flag=True, help="Cover every machine.")
@click.option(
    "--policy",
    "policy_name",
    help="Cover the target of this policy (its tags, machines or all), as it is now.",
)
def windows_create(
    address: str,
    as_json_: bool,
    name: str,
    start: str | None,
    cron: str | None,
    timezone_name: str,
    duration: str,
    tags: tuple[str, ...],
    agent_ids: tuple[str, ...],
    all_machines: bool,
    policy_name: str | None,
) -> None:
    """Create a one-off (--start) or recurring (--cron) window covering --tag, --machine or --all
    (or the target of a --policy).

    \b
    remdiag windows create --name upgrade --start 2026-12-01T22:00 --duration 2h --all
    remdiag windows create --name 'patch night' --cron '0 2 * * 0' \\
        --timezone Europe/Lisbon --duration 3h --tag lab
    """
    if (start is None) == (cron is None):
        _fail("give exactly one of --start (one-off) or --cron (recurring)", 2)
    try:
        length = tokens.parse_duration(duration)
    except ValueError as exc:
        _fail(f"--duration: {exc}", 2)
    if length.total_seconds() % 60:
        _fail("--duration: a whole number of minutes", 2)
    if policy_name is not None:
        if tags or agent_ids or all_machines:
            _fail("give --policy or --tag/--machine/--all, not both", 2)
        document = _console(address, lambda c: c.get_policy(policy_name))
        target = as_json(document.spec).get("target", {})
        all_machines = bool(target.get("all"))
        tags, agent_ids = tuple(target.get("tags", ())), tuple(target.get("machines", ()))
    window = console_pb2.MaintenanceWindow(
        name=name,
        cron=cron or "",
        timezone=timezone_name,
        duration_minutes=int(length.total_seconds() // 60),
        all_machines=all_machines,
        tags=tags,
        agent_ids=agent_ids,
    )
    if start is not None:
        try:
            window.starts_at.FromDatetime(start_time(start, timezone_name))
        except WindowError as exc:
            _fail(str(exc), 2)
    made = _console(address, lambda c: c.create_window(window))
    if as_json_:
        click.echo(json.dumps(as_json(made), indent=2))
    else:
        terminal().print(windows_table([made]))


@windows.command("delete")
@collector_option
@click.argument("window_id", type=click.IntRange(min=1, max=2**63 - 1))
def windows_delete(address: str, window_id: int) -> None:
    """Delete a maintenance window (its ID is in `remdiag windows`)."""
    _console(address, lambda c: c.delete_window(window_id))
    click.echo(f"window {window_id} deleted")


def parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """NAME=VALUE pairs; a VALUE that reads as JSON (10, true, ["a"]) is taken as such, and a
    name given twice makes a list."""
    args: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--arg")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        if name in args:
            before = args[name]
            args[name] = [*(before if isinstance(before, list) else [before]), value]
        else:
            args[name] = value
    return args


@main.command()
@collector_option
@json_option
@click.argument("machine")
@click.argument("action")
@click.option("--arg", "pairs", multiple=True, metavar="NAME=VALUE", help="Repeatable.")
@click.option("--ticket", "ticket_id", type=click.IntRange(1, 2**63 - 1), default=None)
@click.option(
    "--expires",
    default="1h",
    show_default=True,
    help="How long it may wait for an offline machine (30m, 24h, 7d).",
)
@click.option("--no-wait", is_flag=True, help="Return once it is queued or sent.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Stop waiting after this many seconds (the run goes on).",
)
def diagnose(
    address: str,
    as_json_: bool,
    machine: str,
    action: str,
    pairs: tuple[str, ...],
    ticket_id: int | None,
    expires: str,
    no_wait: bool,
    timeout: float,
) -> None:
    """Run a named diagnostic on a MACHINE (agent id or host name) and show it as it arrives.

    `remdiag actions` lists the actions and their arguments. A machine that is offline gets it
    when it returns, if before --expires.
    """
    try:
        lifetime = tokens.parse_duration(expires)
    except ValueError as exc:
        _fail(f"--expires: {exc}", 2)
    request = console_pb2.RunDiagnosticRequest(
        agent_id=machine,
        action=action,
        args=convert.dict_to_struct(parse_args(pairs)),
        expires_in_seconds=int(lifetime.total_seconds()),
        ticket_id=ticket_id or 0,
        no_wait=no_wait,
    )
    console = terminal(stderr=True)
    last: console_pb2.Diagnostic | None = None

    def follow(client: ConsoleClient) -> None:
        nonlocal last
        for change in client.run_diagnostic(request, timeout):
            if not as_json_:
                console.print(diagnostic_line(change, last))
            last = change

    try:
        _console(address, follow)
    except DiagnosticWaitTimeout:
        assert last is not None
        _fail(
            f"stopped waiting after {timeout:g} s; {last.id} is {DiagnosticState(last.state).label}"
            f" (remdiag diagnostics --machine {last.agent_id})",
            1,
        )
    assert last is not None
    if as_json_:
        click.echo(json.dumps(as_json(last), indent=2))
    elif last.HasField("output"):
        terminal().print_json(json.dumps(as_json(last.output)))
    state = DiagnosticState(last.state)
    if state.is_final and state is not DiagnosticState.DONE:
        sys.exit(1)


@main.command("diagnostics")
@collector_option
@json_option
@click.option("--machine", default="", help="Agent id or host name.")
@click.option("--state", "states", multiple=True, type=_names(DiagnosticState))
@click.option("--ticket", "ticket_id", type=click.IntRange(1, 2**63 - 1), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
def diagnostics_list(
    address: str,
    as_json_: bool,
    machine: str,
    states: tuple[str, ...],
    ticket_id: int | None,
    limit: int,
) -> None:
    """Diagnostics asked for, newest first: queued, sent, running, done, failed, expired."""
    request = console_pb2.ListDiagnosticsRequest(
        agent_id=machine,
        states=[DiagnosticState[s.upper()] for s in states],  # type: ignore[misc]
        ticket_id=ticket_id or 0,
        limit=limit,
    )
    found = _console(address, lambda c: c.list_diagnostics(request))
    if as_json_:
        click.echo(json.dumps([as_json(d) for d in found], indent=2))
    else:
        terminal().print(diagnostics_table(found))


@main.command("actions")
@collector_option
@json_option
def actions_list(address: str, as_json_: bool) -> None:
    """The diagnostic actions agents run, with their arguments (for remdiag diagnose)."""
    found = _console(address, lambda c: c.list_actions())
    if as_json_:
        click.echo(json.dumps([as_json(a) for a in found], indent=2))
    else:
        terminal().print(actions_table(found))


@main.command("audit")
@collector_option
@json_option
@click.option("--actor", default="", help="Only what this token name did ('anonymous': no token).")
@click.option("--action", default="", help="Only this console call, e.g. UpdateTicket.")
@click.option("--since", help="Only the last 30m, 24h, 7d, 2w (up to 366d).")
@click.option(
    "--limit",
    type=click.IntRange(1, audit.MAX_LIMIT),
    default=audit.DEFAULT_LIMIT,
    show_default=True,
)
def audit_log(
    address: str, as_json_: bool, actor: str, action: str, since: str | None, limit: int
) -> None:
    """The audit log, newest first: every console action and every refused call (admin only).

    Reads (List*, Get*) are not recorded unless refused.
    """
    request = console_pb2.ListAuditRequest(actor=actor, action=action, limit=limit)
    if since:
        try:
            request.since.FromDatetime(datetime.now(UTC) - tokens.parse_duration(since))
        except ValueError as exc:
            _fail(f"--since: {exc}", 2)
    found = _console(address, lambda c: c.list_audit(request))
    if as_json_:
        click.echo(json.dumps([as_json(e) for e in found], indent=2))
        return
    table = Table(title="Audit log")
    for column in ("when (UTC)", "actor", "role", "action", "target", "outcome", "detail"):
        table.add_column(column)
    for e in found:
        table.add_row(
            f"{e.at.ToDatetime():%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.role or "-",
            e.action,
            e.target or "-",
            e.outcome,
            e.detail,
        )
    terminal().print(table)


@main.group("policy")
def policy_group() -> None:
    """Policies: which checks run where, how often and how strictly (README, "Policies").

    \b
    Precedence, lowest first: the collector's [checks], policies for all machines, policies
    for a tag the machine carries, policies naming the machine; within a layer by
    (priority, name). Connected machines get a changed policy at once.
    """


def _policy_files(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    try:
        return policies.read_files(paths)
    except policies.PolicyError as exc:
        _fail(str(exc), 2)


def _print_changes(reply: console_pb2.ApplyPolicyResponse, dry_run: bool) -> None:
    for change in reply.changes:
        if change.diff:
            click.echo(change.diff, nl=not change.diff.endswith("\n"))
    for change in reply.changes:
        verb = {"created": "create", "changed": "change"}.get(change.change)
        if dry_run and verb:
            click.echo(f"would {verb} {change.name} (version {change.version})")
        else:
            click.echo(f"{change.change} {change.name} (version {change.version})")
    would = "would change" if dry_run else "changed"
    click.echo(f"{reply.machines_affected} machines' effective policy {would}")


_files_option = click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Policy TOML file (repeatable): one policy, or [[policy]] tables.",
)


@policy_group.command("apply")
@collector_option
@_files_option
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
def policy_apply(address: str, paths: tuple[Path, ...], dry_run: bool) -> None:
    """Create or replace the policies in the files, all together or none (admin)."""
    documents = _policy_files(paths)
    reply = _console(address, lambda c: c.apply_policies(documents, dry_run=dry_run))
    _print_changes(reply, dry_run)


@policy_group.command("diff")
@collector_option
@_files_option
def policy_diff(address: str, paths: tuple[Path, ...]) -> None:
    """What `policy apply` would change (a dry run)."""
    documents = _policy_files(paths)
    reply = _console(address, lambda c: c.apply_policies(documents, dry_run=True))
    _print_changes(reply, True)


def _target_text(spec: dict[str, Any]) -> str:
    target = spec.get("target") or {}
    if target.get("all"):
        return "all"
    if target.get("tags"):
        return "tags " + ", ".join(target["tags"])
    return "machines " + ", ".join(target.get("machines") or [])


@policy_group.command("list")
@collector_option
@json_option
def policy_list(address: str, as_json_: bool) -> None:
    """The policies, by name."""
    found = _console(address, lambda c: c.list_policies())
    if as_json_:
        click.echo(json.dumps([as_json(p) for p in found], indent=2))
        return
    table = Table(title=f"Policies ({len(found)})", title_justify="left")
    for column in ("name", "target", "priority", "checks", "version", "updated", "by"):
        table.add_column(column)
    for p in found:
        spec = convert.struct_to_dict(p.spec)
        table.add_row(
            p.name,
            _target_text(spec),
            str(int(spec.get("priority", 0))),
            ", ".join(sorted(spec.get("checks") or {})) or "-",
            str(p.version),
            f"{p.updated_at.ToDatetime():%Y-%m-%d %H:%M} UTC",
            p.updated_by,
        )
    Console().print(table)


@policy_group.command("show")
@collector_option
@json_option
@click.argument("name")
def policy_show(address: str, as_json_: bool, name: str) -> None:
    """One policy as stored (validated, defaults left out)."""
    found = _console(address, lambda c: c.get_policy(name))
    if as_json_:
        click.echo(json.dumps(as_json(found), indent=2))
        return
    click.echo(
        f"{found.name}: version {found.version}, updated "
        f"{found.updated_at.ToDatetime():%Y-%m-%d %H:%M} UTC by {found.updated_by}"
    )
    click.echo(json.dumps(convert.struct_to_dict(found.spec), indent=2, sort_keys=True))


@policy_group.command("delete")
@collector_option
@click.argument("name")
def policy_delete(address: str, name: str) -> None:
    """Delete a policy (admin); machines fall back to the layers below it."""
    reply = _console(address, lambda c: c.delete_policy(name))
    click.echo(f"deleted {name}; {reply.machines_affected} machines' effective policy changed")


@policy_group.command("effective")
@collector_option
@json_option
@click.argument("machine")
def policy_effective(address: str, as_json_: bool, machine: str) -> None:
    """What MACHINE (agent id or host name) runs, and where each value comes from.

    Values no layer sets are the agent's own (its config, else the check's default).
    """
    found = _console(address, lambda c: c.effective_policy(machine))
    if as_json_:
        click.echo(json.dumps(as_json(found), indent=2))
        return
    running = short_version(found.running_version) if found.running_version else "none yet"
    state = "runs it" if found.running_version == found.version else f"behind: runs {running}"
    table = Table(
        title=f"Effective policy of {found.hostname} ({found.agent_id}): "
        f"version {short_version(found.version)}, {state}",
        title_justify="left",
        caption="policies, lowest first: " + (", ".join(found.policies) or "none"),
        caption_justify="left",
    )
    for column in ("check", "field", "value", "source"):
        table.add_column(column)
    for v in found.values:
        table.add_row(v.check_id, v.field, v.value_json, v.source)
    Console().print(table)


def _target(
    tags: tuple[str, ...], agent_ids: tuple[str, ...], all_machines: bool
) -> console_pb2.TaskTarget:
    if all_machines and (tags or agent_ids):
        _fail("give --all, or --tag and --machine, not both", 2)
    if not (all_machines or tags or agent_ids):
        _fail("give --tag, --machine or --all: which machines", 2)
    return console_pb2.TaskTarget(all_machines=all_machines, tags=tags, agent_ids=agent_ids)


def parse_step(text: str) -> console_pb2.TaskStep:
    """'ACTION [NAME=VALUE ...]' (shell-style quoting) as a task step; the pairs read as --arg's."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint="--step") from None
    if not words:
        raise click.BadParameter("empty step: give an action name", param_hint="--step")
    try:
        args = parse_args(tuple(words[1:]))
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--step") from None
    return console_pb2.TaskStep(action=words[0], args=convert.dict_to_struct(args))


@main.group("tasks", invoke_without_command=True)
@collector_option
@json_option
@click.pass_context
def tasks_group(ctx: click.Context, address: str, as_json_: bool) -> None:
    """List scheduled maintenance tasks (or create / delete one, or show its history).

    A task runs diagnostic actions (remdiag actions) on a cron schedule across machines, each
    machine's start spread over the task's window; a machine offline at its start runs it when
    it returns, if the window is still open. A failed run opens a ticket (check task:NAME).
    """
    if ctx.invoked_subcommand is not None:
        return
    found = _console(address, lambda c: c.list_tasks())
    if as_json_:
        click.echo(json.dumps([as_json(t) for t in found], indent=2))
    else:
        terminal().print(tasks_table(found))


@tasks_group.command("create")
@collector_option
@json_option
@click.option("--name", required=True, help="Up to 48 letters, digits, spaces, '.', '_', '-'.")
@click.option(
    "--step",
    "steps",
    multiple=True,
    required=True,
    metavar="'ACTION [NAME=VALUE ...]'",
    help="An action and its arguments; repeat for more steps (up to 10), run in order.",
)
@click.option("--cron", required=True, help="minute hour day month weekday (0 or 7 is Sunday).")
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="IANA timezone the cron is read in.",
)
@click.option("--window", required=True, help="Starts are spread over this: 30m, 2h (1m to 24h).")
@click.option("--tag", "tags", multiple=True, help="Run on the machines with this tag.")
@click.option("--machine", "agent_ids", multiple=True, help="Run on this agent id.")
@click.option("--all", "all_machines", is_flag=True, help="Run on every machine.")
def tasks_create(
    address: str,
    as_json_: bool,
    name: str,
    steps: tuple[str, ...],
    cron: str,
    timezone_name: str,
    window: str,
    tags: tuple[str, ...],
    agent_ids: tuple[str, ...],
    all_machines: bool,
) -> None:
    """Create a maintenance task.

    \b
    remdiag tasks create --name 'weekly check-up' --step inventory \\
        --step 'smart_details' --step 'largest_dirs path=/home' \\
        --cron '0 2 * * 0' --timezone Europe/Lisbon --window 2h --tag laptops
    """
    parsed = [parse_step(text) for text in steps]
    try:
        length = tokens.parse_duration(window)
    except ValueError as exc:
        _fail(f"--window: {exc}", 2)
    if length.total_seconds() % 60:
        _fail("--window: a whole number of minutes", 2)
    task = console_pb2.MaintenanceTask(
        name=name,
        steps=parsed,
        cron=cron,
        timezone=timezone_name,
        window_minutes=int(length.total_seconds() // 60),
        target=_target(tags, agent_ids, all_machines),
    )
    made = _console(address, lambda c: c.create_task(task))
    if as_json_:
        click.echo(json.dumps(as_json(made), indent=2))
    else:
        terminal().print(tasks_table([made]))


@tasks_group.command("delete")
@collector_option
@click.argument("task_id", type=click.IntRange(min=1, max=2**63 - 1))
def tasks_delete(address: str, task_id: int) -> None:
    """Delete a maintenance task and its history (its tickets stay)."""
    _console(address, lambda c: c.delete_task(task_id))
    click.echo(f"task {task_id} deleted")


@tasks_group.command("history")
@collector_option
@json_option
@click.argument("task_id", type=click.IntRange(min=1, max=2**63 - 1))
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
def tasks_history(address: str, as_json_: bool, task_id: int, limit: int) -> None:
    """Each machine's runs of a task, newest first: outcome, steps, the ticket a failure opened."""
    found = _console(address, lambda c: c.task_history(task_id, limit))
    if as_json_:
        click.echo(json.dumps(as_json(found), indent=2))
    else:
        terminal().print(task_history_table(found))


@main.group("recurring", invoke_without_command=True)
@collector_option
@json_option
@click.pass_context
def recurring_group(ctx: click.Context, address: str, as_json_: bool) -> None:
    """List recurring preventive tickets (or create / delete one).

    Each opens a ticket (check preventive:NAME) on a schedule for every machine of its target
    that has none of it still open, placed by the usual priority, tier and SLA rules.
    """
    if ctx.invoked_subcommand is not None:
        return
    found = _console(address, lambda c: c.list_recurring())
    if as_json_:
        click.echo(json.dumps([as_json(r) for r in found], indent=2))
    else:
        terminal().print(recurring_table(found))


@recurring_group.command("create")
@collector_option
@json_option
@click.option("--name", required=True, help="Up to 48 letters, digits, spaces, '.', '_', '-'.")
@click.option("--title", required=True, help="The tickets' title.")
@click.option("--description", default="", help="What to do: the tickets' first event.")
@click.option("--cron", help="minute hour day month weekday (0 or 7 is Sunday).")
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="IANA timezone the cron is read in.",
)
@click.option(
    "--every-days",
    type=click.IntRange(1, 3650),
    help="Instead of --cron: every N days, the first now.",
)
@click.option("--tag", "tags", multiple=True, help="For the machines with this tag.")
@click.option("--machine", "agent_ids", multiple=True, help="For this agent id.")
@click.option("--all", "all_machines", is_flag=True, help="For every machine.")
@click.option("--category", type=_names(Category), default="software", show_default=True)
@click.option("--severity", type=_names(Severity), default="warning", show_default=True)
def recurring_create(
    address: str,
    as_json_: bool,
    name: str,
    title: str,
    description: str,
    cron: str | None,
    timezone_name: str,
    every_days: int | None,
    tags: tuple[str, ...],
    agent_ids: tuple[str, ...],
    all_machines: bool,
    category: str,
    severity: str,
) -> None:
    """Create a recurring preventive ticket.

    \b
    remdiag recurring create --name backups --title 'Check the backup restores' \\
        --every-days 90 --tag finance
    """
    if (cron is None) == (every_days is None):
        _fail("give exactly one of --cron or --every-days", 2)
    recurring = console_pb2.RecurringTicket(
        name=name,
        title=title,
        description=description,
        cron=cron or "",
        timezone=timezone_name,
        every_days=every_days or 0,
        target=_target(tags, agent_ids, all_machines),
        category=int(Category[category.upper()]),  # type: ignore[arg-type]
        severity=int(Severity[severity.upper()]),  # type: ignore[arg-type]
    )
    made = _console(address, lambda c: c.create_recurring(recurring))
    if as_json_:
        click.echo(json.dumps(as_json(made), indent=2))
    else:
        terminal().print(recurring_table([made]))


@recurring_group.command("delete")
@collector_option
@click.argument("recurring_id", type=click.IntRange(min=1, max=2**63 - 1))
def recurring_delete(address: str, recurring_id: int) -> None:
    """Delete a recurring preventive ticket (the tickets it opened stay)."""
    _console(address, lambda c: c.delete_recurring(recurring_id))
    click.echo(f"recurring ticket {recurring_id} deleted")


# Admin commands on the collector's database: whoever can open it is its admin. They run where
# the collector runs, with the same --config, --database-url and environment.
def database_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--database-url", help="SQLAlchemy URL (env REMDIAG_COLLECTOR_DATABASE_URL)."
    )(command)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="REMDIAG_COLLECTOR_CONFIG",
        help="The collector's TOML config file (env REMDIAG_COLLECTOR_CONFIG).",
    )(command)


@agents.command("tag", context_settings={"ignore_unknown_options": True})
@collector_option
@json_option
@click.argument("agent_id")
@click.argument("changes", nargs=-1, required=True)
def agents_tag(address: str, as_json_: bool, agent_id: str, changes: tuple[str, ...]) -> None:
    """Add (+tag) and remove (-tag) a machine's tags, e.g. `agents tag ID +vip -lab`.

    Tags set a ticket's impact ([desk] impact_tags) and scope maintenance windows.
    """
    bad = [c for c in changes if c[:1] not in "+-" or len(c) < 2]
    if bad:
        _fail(f"each change is +tag or -tag, got {' '.join(bad)!r}", 2)
    add = [c[1:] for c in changes if c[0] == "+"]
    remove = [c[1:] for c in changes if c[0] == "-"]
    tagged = _console(address, lambda c: c.tag_agent(agent_id, add, remove))
    if as_json_:
        click.echo(json.dumps(as_json(tagged), indent=2))
    else:
        click.echo(f"{tagged.hostname} ({tagged.agent_id}): {' '.join(tagged.tags) or 'no tags'}")


@agents.command("revoke")
@database_options
@click.argument("agent_id")
def agents_revoke(config_path: Path | None, database_url: str | None, agent_id: str) -> None:
    """Revoke an agent: its stream closes within seconds, it may not connect or enroll again.

    \b
    Works on the collector's database directly (same --config, --database-url and
    REMDIAG_COLLECTOR_* environment as `remdiag collector serve`): run it where the
    collector runs.
    """
    outcome = _on_database(
        config_path, database_url, lambda s: fleet.revoke(s, agent_id, datetime.now(UTC))
    )
    if outcome is None:
        _fail(f"no agent {agent_id}", 1)
    click.echo(f"agent {agent_id} {'revoked' if outcome else 'was already revoked'}")


@agents.command("reinstate")
@database_options
@click.argument("agent_id")
def agents_reinstate(config_path: Path | None, database_url: str | None, agent_id: str) -> None:
    """Undo a revocation: the machine may enroll again (with a token) and gets new secrets.

    \b
    Works on the collector's database directly (same --config, --database-url and
    REMDIAG_COLLECTOR_* environment as `remdiag collector serve`): run it where the
    collector runs.
    """
    outcome = _on_database(config_path, database_url, lambda s: fleet.reinstate(s, agent_id))
    if outcome is None:
        _fail(f"no agent {agent_id}", 1)
    if outcome:
        click.echo(f"agent {agent_id} reinstated: enroll the machine again (remdiag-agent enroll)")
    else:
        click.echo(f"agent {agent_id} was not revoked")


@main.group()
def token() -> None:
    """Tokens: enrollment tokens for agents, console tokens (a role and a name) for people.

    \b
    Works on the collector's database directly (same --config, --database-url and
    REMDIAG_COLLECTOR_* environment as `remdiag collector serve`): run it where the
    collector runs. `remdiag up` makes its own admin token (local-admin).
    """


ROLES = click.Choice([r.value for r in Role])


@token.command("create")
@database_options
@click.option("--enroll", is_flag=True, help="An enrollment token, for agents.")
@click.option("--role", type=ROLES, help="A console token with this role (needs --name).")
@click.option("--name", help="Who holds the console token: the actor of what it does.")
@click.option(
    "--expires",
    help="Lifetime: 30m, 24h, 7d, 2w (up to 366d). Enrollment tokens: 24h by default; "
    "console tokens: until revoked by default.",
)
@click.option("--uses", default="1", show_default=True, help="How many agents it may enroll.")
@json_option
def token_create(
    config_path: Path | None,
    database_url: str | None,
    enroll: bool,
    role: str | None,
    name: str | None,
    expires: str | None,
    uses: str,
    as_json_: bool,
) -> None:
    """Create a token and print it once: only its hash is kept.

    \b
    remdiag token create --enroll [--expires 24h] [--uses 1]
    remdiag token create --role technician --name alice [--expires 90d]
    remdiag token create --role admin --name bob

    Works on the collector's database directly, like every `remdiag token` command
    (see remdiag token --help).
    """
    if enroll == (role is not None):
        _fail("say which kind of token: --enroll, or --role technician|admin --name NAME", 2)
    try:
        lifetime = tokens.parse_duration(expires) if expires else None
    except ValueError as exc:
        _fail(f"--expires: {exc}", 2)
    if role is not None:
        if not name:
            _fail("a console token needs --name (who holds it)", 2)
        _create_console_token(config_path, database_url, name, Role(role), lifetime, as_json_)
        return
    if not uses.isdigit() or not 1 <= int(uses) <= tokens.MAX_USES:
        _fail(f"--uses: expected a whole number from 1 to {tokens.MAX_USES}, got {uses!r}", 2)
    created = _on_database(
        config_path,
        database_url,
        lambda s: tokens.create(
            s, datetime.now(UTC), lifetime or tokens.DEFAULT_LIFETIME, int(uses)
        ),
    )
    if as_json_:
        click.echo(
            json.dumps(
                {
                    "id": created.id,
                    "token": created.secret,
                    "expires_at": created.expires_at.isoformat(),
                    "uses": created.uses,
                }
            )
        )
        return
    click.echo(
        f"enrollment token {created.id}: {created.uses} use(s), expires "
        f"{created.expires_at:%Y-%m-%d %H:%M} UTC. Shown once, keep it secret:",
        err=True,
    )
    click.echo(created.secret)


def _create_console_token(
    config_path: Path | None,
    database_url: str | None,
    name: str,
    role: Role,
    lifetime: timedelta | None,
    as_json_: bool,
) -> None:
    def create(session: Session) -> console_tokens.NewConsoleToken | str:
        try:
            return console_tokens.create(session, datetime.now(UTC), name, role, lifetime)
        except console_tokens.ConsoleTokenError as exc:
            return str(exc)

    created = _on_database(config_path, database_url, create)
    if isinstance(created, str):
        _fail(created, 1)
    expires = created.expires_at
    if as_json_:
        click.echo(
            json.dumps(
                {
                    "id": f"{CONSOLE_ID_PREFIX}{created.id}",
                    "token": created.secret,
                    "name": created.name,
                    "role": created.role.value,
                    "expires_at": expires.isoformat() if expires else None,
                }
            )
        )
        return
    until = f"expires {expires:%Y-%m-%d %H:%M} UTC" if expires else "valid until revoked"
    click.echo(
        f"console token {CONSOLE_ID_PREFIX}{created.id} for {created.name} "
        f"({created.role.value}), {until}. Shown once, keep it secret (remdiag reads it from "
        "--token, env REMDIAG_TOKEN or the file env REMDIAG_TOKEN_FILE names):",
        err=True,
    )
    click.echo(created.secret)


CONSOLE_ID_PREFIX = "c"
"""Console token ids are listed as c1, c2...: enrollment tokens keep plain numbers."""


@token.command("list")
@database_options
@json_option
def token_list(config_path: Path | None, database_url: str | None, as_json_: bool) -> None:
    """List enrollment and console tokens (never their secrets).

    Works on the collector's database directly, like every `remdiag token` command
    (see remdiag token --help).
    """
    now = datetime.now(UTC)
    found, people = _on_database(
        config_path,
        database_url,
        lambda s: (tokens.list_tokens(s, now), console_tokens.list_tokens(s, now)),
    )
    if as_json_:
        click.echo(
            json.dumps(
                [
                    {
                        "id": t.id,
                        "kind": "enrollment",
                        "state": t.state.value,
                        "created_at": t.created_at.isoformat(),
                        "expires_at": t.expires_at.isoformat(),
                        "uses": t.uses,
                        "uses_left": t.uses_left,
                        "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    }
                    for t in found
                ]
                + [
                    {
                        "id": f"{CONSOLE_ID_PREFIX}{c.id}",
                        "kind": "console",
                        "role": c.role.value,
                        "name": c.name,
                        "state": c.state.value,
                        "created_at": c.created_at.isoformat(),
                        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                    }
                    for c in people
                ],
                indent=2,
            )
        )
        return
    table = Table(title="Tokens")
    for column in ("id", "kind", "role", "name", "state", "uses left", "created", "expires"):
        table.add_column(column)
    for t in found:
        table.add_row(
            str(t.id),
            "enrollment",
            "-",
            "-",
            t.state.value,
            f"{t.uses_left}/{t.uses}",
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d %H:%M}",
        )
    for c in people:
        table.add_row(
            f"{CONSOLE_ID_PREFIX}{c.id}",
            "console",
            c.role.value,
            c.name,
            c.state.value,
            "-",
            f"{c.created_at:%Y-%m-%d %H:%M}",
            f"{c.expires_at:%Y-%m-%d %H:%M}" if c.expires_at else "never",
        )
    terminal().print(table)


@token.command("revoke")
@database_options
@click.argument("token_id")
def token_revoke(config_path: Path | None, database_url: str | None, token_id: str) -> None:
    """Revoke a token by the id `remdiag token list` shows: an enrollment token (a number)
    enrolls nobody from now on (enrolled agents stay); a console token (c1, c2...) stops
    working within seconds.

    Works on the collector's database directly, like every `remdiag token` command
    (see remdiag token --help).
    """
    console = token_id.startswith(CONSOLE_ID_PREFIX)
    number = token_id.removeprefix(CONSOLE_ID_PREFIX) if console else token_id
    if not number.isdigit() or int(number) > 2**63 - 1:
        _fail(
            f"expected a token id from remdiag token list (a number, or c and a number for a "
            f"console token), got {token_id!r}",
            2,
        )
    revoke = console_tokens.revoke if console else tokens.revoke
    before = _on_database(
        config_path, database_url, lambda s: revoke(s, int(number), datetime.now(UTC))
    )
    if before is None:
        _fail(f"no token {token_id}", 1)
    if before is tokens.TokenState.REVOKED:
        click.echo(f"token {token_id} was already revoked")
    else:
        click.echo(f"token {token_id} revoked")


def _on_database(
    config_path: Path | None, database_url: str | None, work: Callable[[Session], T]
) -> T:
    """Run `work` in one transaction on the collector's database, as `serve` would open it."""
    overrides = {"database_url": database_url} if database_url else {}
    try:
        settings = load_settings(CollectorSettings, config_path, overrides)
    except ConfigError as exc:
        _fail(str(exc), 2)
    url = settings.database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        _fail(f"invalid option database_url: {url!r} is not an SQLAlchemy URL", 2)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not Path(database).exists():
        # Creating an empty database here would hide a wrong path behind a silent success.
        _fail(
            f"no collector database at {database}: pass the collector's --config or "
            "--database-url, or start the collector once (remdiag collector serve)",
            2,
        )
    try:
        store = Store(url)
    except SQLAlchemyError as exc:
        _fail(f"cannot open the database {parsed.render_as_string()}: {exc.__class__.__name__}", 1)
    try:
        return store.call(work)
    except SQLAlchemyError as exc:
        _fail(f"the database refused the change: {exc.__class__.__name__}", 1)
    finally:
        store.close()


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"remdiag: {message}", err=True)
    sys.exit(code)
