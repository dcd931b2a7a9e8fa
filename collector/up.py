"""`remdiag up`: collector on a SQLite file, loopback only, a local agent and a live view."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from agent.app import Agent
from agent.config import AgentSettings, CheckSettings
from collector import console_tokens
from collector.client import ConsoleClient, ConsoleError
from collector.config import CollectorSettings
from collector.server import Collector, serve
from collector.views import agents_table, tickets_table
from remdiag.configfile import ConfigError, load_settings
from remdiag.v1 import console_pb2

REFRESH_S = 2.0
TOKEN_FILE = "console-token"
"""In the data dir: the admin token `up` makes; the CLI's default REMDIAG_TOKEN_FILE is
.remdiag/console-token, the default data dir's."""


async def _local_admin_token(collector: Collector, path: Path) -> str:
    """The local-admin console token in `path`: kept while it is valid, else made anew and
    written there, readable by this user only."""
    current = await asyncio.to_thread(_read_token, path)
    fresh = await collector.store.run(
        lambda s: console_tokens.ensure_local_admin(s, datetime.now(UTC), current)
    )
    if fresh is None:
        assert current is not None
        return current
    await asyncio.to_thread(_write_token, path, fresh)
    return fresh


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _write_token(path: Path, secret: str) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret + "\n")


async def up(data_dir: Path, port: int, agent_base: AgentSettings, console: Console) -> None:
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    log_file = data_dir / "remdiag.log"
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    db = data_dir / "collector.db"
    settings = CollectorSettings(listen=f"127.0.0.1:{port}", database_url=f"sqlite:///{db}")
    collector = await serve(settings)
    address = f"localhost:{collector.port}"
    token_file = data_dir / TOKEN_FILE
    try:
        token = await _local_admin_token(collector, token_file)
    except BaseException:
        await collector.stop()
        raise
    agent = Agent(
        AgentSettings.model_validate(
            {**agent_base.model_dump(), "collector": address, "state_dir": data_dir / "agent"}
        )
    )
    agent_task = asyncio.create_task(agent.run(), name="agent")
    console.print(
        Text.assemble(
            ("remdiag is up.\n", "bold green"),
            f"  collector  {address} (loopback only)\n",
            f"  database   {db}\n",
            f"  agent      {agent.machine.hostname}, state in {data_dir / 'agent'}\n",
            f"  log        {log_file}\n",
            f"  console    remdiag agents | remdiag tickets | remdiag ticket ID"
            f" (with --collector {address})\n",
            f"  token      {token_file} (admin, local-admin; remdiag finds it when run here)\n",
            ("Ctrl-C stops everything.", "dim"),
        )
    )
    try:
        with ConsoleClient(address, token) as client:
            await _watch(client, console)
    finally:
        agent_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agent_task
        await collector.stop()
        console.print("remdiag stopped.")


async def _watch(client: ConsoleClient, console: Console) -> None:
    """Refresh the machines and open tickets; on a non-terminal print only changes."""
    if console.is_terminal:
        with Live(console=console, refresh_per_second=1) as live:
            while True:
                live.update(await asyncio.to_thread(_render, client))
                await asyncio.sleep(REFRESH_S)
    last = ""
    while True:
        line = await asyncio.to_thread(_summary, client)
        if line != last:
            console.print(line)
            last = line
        await asyncio.sleep(REFRESH_S)


def _render(client: ConsoleClient) -> Group | Text:
    try:
        return Group(
            agents_table(client.list_agents()),
            tickets_table(
                client.list_tickets(console_pb2.ListTicketsRequest(open_only=True)),
                title="Open tickets",
            ),
        )
    except ConsoleError as exc:
        return Text(str(exc), style="red")


def _summary(client: ConsoleClient) -> str:
    try:
        agents = client.list_agents()
        tickets = client.list_tickets(console_pb2.ListTicketsRequest(open_only=True))
    except ConsoleError as exc:
        return str(exc)
    machines = ", ".join(
        f"{a.hostname} ({'connected' if a.connected else 'offline'})" for a in agents
    )
    opened = "; ".join(f"#{t.id} {t.check_id} on {t.hostname}" for t in tickets)
    return f"machines: {machines or 'none yet'} | open tickets: {opened or 'none'}"


def run_up(data_dir: Path, port: int, demo: bool, agent_config: Path | None) -> None:
    console = Console(markup=False)  # hosts, summaries and errors are data, not markup
    try:
        agent_base = load_settings(AgentSettings, agent_config)
    except ConfigError as exc:
        console.print(Text(f"remdiag up: agent config: {exc}", style="red"))
        sys.exit(2)
    if demo:
        # A disk check that cannot pass, every 10 s: a ticket opens within half a minute.
        checks = {
            **agent_base.checks,
            "disk.free_space": CheckSettings(
                interval_seconds=10,
                thresholds={"max_used_percent_warning": 0, "max_used_percent_critical": 0},
            ),
        }
        agent_base = agent_base.model_copy(update={"checks": checks})
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(up(data_dir, port, agent_base, console))
        except OSError as exc:
            console.print(Text(f"remdiag up: {exc}", style="red"))
            sys.exit(1)
