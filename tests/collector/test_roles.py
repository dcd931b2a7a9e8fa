"""Console tokens and roles on a real collector (SQLite and PostgreSQL): no token, an unknown,
revoked or expired token, a technician on an admin RPC, the role table, tokens stored hashed,
the actor of an action, and `remdiag token` for console tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from collector import console_tokens
from collector.cli import main
from collector.console import REQUIRED_ROLE
from collector.console_tokens import ConsoleTokenError, Principal, Role
from collector.server import Collector
from collector.store.models import Base, ConsoleToken
from collector.store.runner import Store
from remdiag.v1 import console_pb2, console_pb2_grpc
from tests.collector.conftest import as_, token_of
from tests.collector.factories import enrolled
from tests.collector.test_console_actions import Machines
from tests.support import eventually

Stub = console_pb2_grpc.ConsoleServiceStub
TECHNICIAN_RPCS = {
    "ListAgents",
    "GetAgent",
    "ListTickets",
    "GetTicket",
    "UpdateTicket",
    "ListWindows",
    "GetReport",
    "RunDiagnostic",
    "ListDiagnostics",
    "ListActions",
    "ListPolicies",
    "GetPolicy",
    "GetEffectivePolicy",
    "ListTasks",
    "GetTaskHistory",
    "ListRecurringTickets",
}


@pytest.fixture
async def bare(collector: Collector) -> AsyncIterator[Stub]:
    """A console stub whose calls carry no token unless they pass one."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{collector.port}") as channel:
        yield Stub(channel)


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


# --- the role table -----------------------------------------------------------------------------


def test_every_console_rpc_declares_its_role() -> None:
    service = console_pb2.DESCRIPTOR.services_by_name["ConsoleService"]
    assert set(REQUIRED_ROLE) == set(service.methods_by_name)


def test_technicians_may_do_exactly_the_technician_rpcs() -> None:
    assert {m for m, r in REQUIRED_ROLE.items() if r is Role.TECHNICIAN} == TECHNICIAN_RPCS
    assert all(Role.ADMIN.allows(r) for r in REQUIRED_ROLE.values())
    assert not Role.TECHNICIAN.allows(Role.ADMIN)


# --- refusals -----------------------------------------------------------------------------------


async def test_no_token_is_unauthenticated(bare: Stub) -> None:
    error = await refusal(bare.ListTickets(console_pb2.ListTicketsRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no console token" in (error.details() or "")


@pytest.mark.parametrize(
    "secret", ["rdconsole_not-a-token", "rdenroll_x", "x" * 300, token_of("nobody")]
)
async def test_an_unknown_token_is_unauthenticated(bare: Stub, secret: str) -> None:
    error = await refusal(bare.ListAgents(console_pb2.ListAgentsRequest(), metadata=bearer(secret)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "unknown, revoked or expired" in (error.details() or "")


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("TagAgent", console_pb2.TagAgentRequest(agent_id="x", add=["vip"])),
        ("CreateWindow", console_pb2.CreateWindowRequest()),
        ("DeleteWindow", console_pb2.DeleteWindowRequest(window_id=1)),
        ("ListAudit", console_pb2.ListAuditRequest()),
    ],
)
async def test_a_technician_token_is_refused_on_an_admin_rpc(
    bare: Stub, method: str, request_: object
) -> None:
    error = await refusal(getattr(bare, method)(request_, metadata=as_("alice")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        f"{method} needs the admin role; the token of alice has the technician role"
    )


async def test_the_admin_may_do_what_a_technician_may(bare: Stub) -> None:
    for who in ("alice", "admin"):
        reply = await bare.ListTickets(console_pb2.ListTicketsRequest(), metadata=as_(who))
        assert list(reply.tickets) == []


async def test_a_revoked_token_stops_working_within_seconds(
    collector: Collector, bare: Stub
) -> None:
    made = await collector.store.run(
        lambda s: console_tokens.create(s, datetime.now(UTC), "zoe", Role.TECHNICIAN)
    )
    request = console_pb2.ListAgentsRequest()
    await bare.ListAgents(request, metadata=bearer(made.secret))  # verified, and cached
    await collector.store.run(lambda s: console_tokens.revoke(s, made.id, datetime.now(UTC)))

    async def refused() -> grpc.aio.AioRpcError | None:
        try:
            await bare.ListAgents(request, metadata=bearer(made.secret))
        except grpc.aio.AioRpcError as exc:
            return exc
        return None

    error = await eventually(refused, "the revoked token to be refused", timeout_s=10)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_expired_token_is_refused(collector: Collector, bare: Stub) -> None:
    made = await collector.store.run(
        lambda s: console_tokens.create(
            s, datetime.now(UTC) - timedelta(hours=2), "old", Role.ADMIN, timedelta(hours=1)
        )
    )
    error = await refusal(
        bare.ListAgents(console_pb2.ListAgentsRequest(), metadata=bearer(made.secret))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- the principal ------------------------------------------------------------------------------


async def test_the_actor_of_an_update_is_the_token_name(collector: Collector, bare: Stub) -> None:
    machines = Machines(collector)
    ticket_id = await machines.fail(await machines.enroll(1), 0)
    request = console_pb2.UpdateTicketRequest(
        ticket_id=ticket_id, actor="mallory", take=console_pb2.TakeTicket()
    )
    detail = await bare.UpdateTicket(request, metadata=as_("bob"))
    assert detail.ticket.assignee == "bob"
    assert [(e.actor, e.kind) for e in detail.events] == [("system", "opened"), ("bob", "taken")]
    mine = await bare.ListTickets(console_pb2.ListTicketsRequest(mine=True), metadata=as_("bob"))
    assert [t.id for t in mine.tickets] == [ticket_id]
    theirs = await bare.ListTickets(
        console_pb2.ListTicketsRequest(mine=True), metadata=as_("alice")
    )
    assert list(theirs.tickets) == []
    error = await refusal(
        bare.ListTickets(
            console_pb2.ListTicketsRequest(mine=True, assignee="bob"), metadata=as_("bob")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_author_of_a_window_is_the_token_name(collector: Collector, bare: Stub) -> None:
    agent_id = await collector.store.run(lambda s: enrolled(s, 1).agent_id)
    window = console_pb2.MaintenanceWindow(name="w", duration_minutes=60, agent_ids=[agent_id])
    window.starts_at.FromDatetime(datetime.now(UTC))
    made = await bare.CreateWindow(
        console_pb2.CreateWindowRequest(window=window, actor="mallory"), metadata=as_("admin")
    )
    assert made.created_by == "admin"


# --- tokens in the store ------------------------------------------------------------------------


def test_console_tokens_are_stored_hashed_and_names_are_unique_while_live(
    store_url: str,
) -> None:
    store = Store(store_url)
    try:
        now = datetime.now(UTC)
        made = store.call(lambda s: console_tokens.create(s, now, "alice", Role.TECHNICIAN))
        assert made.secret.startswith("rdconsole_")
        with pytest.raises(ConsoleTokenError, match="named 'alice' already"):
            store.call(lambda s: console_tokens.create(s, now, "alice", Role.ADMIN))
        with pytest.raises(ConsoleTokenError, match="token name"):
            store.call(lambda s: console_tokens.create(s, now, "not ok", Role.ADMIN))
        assert store.call(lambda s: console_tokens.authenticate(s, made.secret, now)) == (
            Principal("alice", Role.TECHNICIAN)
        )
        # The secret is nowhere in the database, only its SHA-256.
        with store.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in connection.execute(table.select()):
                    assert made.secret not in repr(tuple(row)), table.name
        store.call(lambda s: console_tokens.revoke(s, made.id, now))
        assert store.call(lambda s: console_tokens.authenticate(s, made.secret, now)) is None
        again = store.call(lambda s: console_tokens.create(s, now, "alice", Role.ADMIN))
        views = store.call(lambda s: console_tokens.list_tokens(s, now))
        assert [(v.id, v.name, v.role, v.state.value) for v in views] == [
            (made.id, "alice", Role.TECHNICIAN, "revoked"),
            (again.id, "alice", Role.ADMIN, "active"),
        ]
        # An expired, never revoked token gives its name up to a new one.
        later = now + timedelta(days=2)
        store.call(lambda s: console_tokens.create(s, now, "eve", Role.ADMIN, timedelta(days=1)))
        store.call(lambda s: console_tokens.create(s, later, "eve", Role.ADMIN))
        with store.engine.connect() as connection:
            live = connection.execute(
                select(ConsoleToken.name).where(ConsoleToken.revoked_at.is_(None))
            ).all()
        assert sorted(n for (n,) in live) == ["alice", "eve"]
    finally:
        store.close()


def test_the_store_refuses_two_live_tokens_of_one_name(store_url: str) -> None:
    store = Store(store_url)
    try:
        now = datetime.now(UTC)
        store.call(lambda s: console_tokens.create(s, now, "alice", Role.TECHNICIAN))
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO console_tokens (token_hash, name, role, created_at) "
                    "VALUES ('h', 'alice', 'admin', :now)"
                ),
                {"now": now},
            )
    finally:
        store.close()


# --- remdiag token ------------------------------------------------------------------------------


def remdiag(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "200", **env})


async def test_cli_creates_lists_and_revokes_console_tokens(
    collector: Collector, store_url: str, bare: Stub
) -> None:
    db = ("--database-url", store_url)
    made = await asyncio.to_thread(
        remdiag, "token", "create", "--role", "technician", "--name", "zoe", "--json", *db
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert (created["name"], created["role"], created["expires_at"]) == ("zoe", "technician", None)
    secret = created["token"]
    address = f"127.0.0.1:{collector.port}"

    listed = await asyncio.to_thread(
        remdiag, "tickets", "--collector", address, "--json", REMDIAG_TOKEN=secret
    )
    assert listed.exit_code == 0, listed.output
    tagged = await asyncio.to_thread(
        remdiag, "agents", "tag", "x", "+vip", "--collector", address, "--token", secret
    )
    assert tagged.exit_code == 1
    assert "TagAgent needs the admin role" in tagged.output

    shown = await asyncio.to_thread(remdiag, "token", "list", "--json", *db)
    entries = [t for t in json.loads(shown.output) if t["kind"] == "console"]
    zoe = next(t for t in entries if t["name"] == "zoe")
    assert (zoe["id"], zoe["role"], zoe["state"]) == (created["id"], "technician", "active")
    assert "token" not in zoe
    table = await asyncio.to_thread(remdiag, "token", "list", *db)
    assert "console" in table.output and "technician" in table.output and "zoe" in table.output

    again = await asyncio.to_thread(
        remdiag, "token", "create", "--role", "admin", "--name", "zoe", *db
    )
    assert again.exit_code == 1 and "named 'zoe' already" in again.output

    revoked = await asyncio.to_thread(remdiag, "token", "revoke", created["id"], *db)
    assert revoked.exit_code == 0 and f"token {created['id']} revoked" in revoked.output

    async def refused() -> bool:
        result = await asyncio.to_thread(
            remdiag, "tickets", "--collector", address, REMDIAG_TOKEN=secret
        )
        return result.exit_code == 1 and "unknown, revoked or expired" in result.output

    await eventually(refused, "the revoked token to be refused", timeout_s=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "technician"), "needs --name"),
        (("--role", "owner", "--name", "x"), "owner"),
        (("--enroll", "--role", "admin", "--name", "x"), "say which kind"),
        ((), "say which kind"),
        (("--role", "admin", "--name", "x", "--expires", "1y"), "--expires"),
    ],
)
async def test_cli_token_create_usage_errors(
    collector: Collector, store_url: str, args: tuple[str, ...], message: str
) -> None:
    result = await asyncio.to_thread(remdiag, "token", "create", *args, "--database-url", store_url)
    assert result.exit_code == 2, result.output
    assert message in result.output


async def test_the_cli_reads_the_token_file(collector: Collector, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(token_of("alice") + "\n", encoding="utf-8")
    address = f"127.0.0.1:{collector.port}"
    result = await asyncio.to_thread(
        remdiag, "agents", "--collector", address, REMDIAG_TOKEN_FILE=str(path)
    )
    assert result.exit_code == 0, result.output
    missing = await asyncio.to_thread(
        remdiag, "agents", "--collector", address, REMDIAG_TOKEN_FILE=str(tmp_path / "none")
    )
    assert missing.exit_code == 1 and "no console token" in missing.output
