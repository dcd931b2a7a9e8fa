"""Enrollment tokens (collector/tokens.py, fleet.enroll, Enroll) and `remdiag token` on a real
collector: hashed at rest, refused whole when wrong/expired/used up/revoked, never overspent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from collector import fleet, tokens
from collector.cli import main
from collector.config import CollectorSettings
from collector.server import Collector, serve
from collector.store.models import Agent, EnrollmentToken
from collector.store.runner import Store
from remdiag.v1 import agent_pb2, agent_pb2_grpc
from tests.collector.factories import counts, hello, identity

HOUR = timedelta(hours=1)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def closed_collector(store_url: str) -> AsyncIterator[Collector]:
    """A loopback collector with open enrollment off: every enrollment needs a token."""
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=store_url, allow_open_enrollment=False)
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def channel(closed_collector: Collector) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{closed_collector.port}") as opened:
        yield opened


def new_token(
    collector: Collector, uses: int = 1, created: datetime | None = None, lifetime: timedelta = HOUR
) -> tokens.NewToken:
    return collector.store.call(lambda s: tokens.create(s, created or now(), lifetime, uses))


async def enroll(
    channel: grpc.aio.Channel, token: str, n: int = 1
) -> agent_pb2.EnrollResponse | grpc.aio.AioRpcError:
    request = agent_pb2.EnrollRequest(
        enrollment_token=token, machine=identity(n), agent_version="0.1.0"
    )
    try:
        reply: agent_pb2.EnrollResponse = await agent_pb2_grpc.AgentServiceStub(channel).Enroll(
            request
        )
        return reply
    except grpc.aio.AioRpcError as exc:
        return exc


def token_row(collector: Collector, token_id: int) -> EnrollmentToken:
    row = collector.store.call(lambda s: s.get(EnrollmentToken, token_id))
    assert row is not None
    return row


# -- tokens at rest ------------------------------------------------------------------------


def test_a_token_is_random_shown_once_and_stored_only_as_its_hash(store_url: str) -> None:
    store = Store(store_url)
    try:
        first = store.call(lambda s: tokens.create(s, now(), HOUR, 50))
        second = store.call(lambda s: tokens.create(s, now(), HOUR, 50))
        # token_urlsafe(32): 256 random bits, 43 characters after the prefix.
        assert len(first.secret.removeprefix(tokens.PREFIX)) >= 43
        assert first.secret != second.secret and first.id != second.id
        dumped = store.call(
            lambda s: [tuple(r) for r in s.execute(text("SELECT * FROM enrollment_tokens"))]
        )
        assert first.secret not in repr(dumped)
        row = store.call(lambda s: s.get(EnrollmentToken, first.id))
        assert row is not None
        assert row.token_hash == tokens.hash_token(first.secret)
        assert (row.uses, row.uses_left, row.revoked_at) == (50, 50, None)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("text_", "expected"),
    [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7))],
)
def test_durations(text_: str, expected: timedelta) -> None:
    assert tokens.parse_duration(text_) == expected


@pytest.mark.parametrize("bad", ["24x", "", "h", "-1h", "0m", "400d", "1.5h", "24 hours"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        tokens.parse_duration(bad)


# -- Enroll with tokens (fault test e) -----------------------------------------------------


async def test_a_valid_token_enrolls_and_spends_one_use(
    closed_collector: Collector, channel: grpc.aio.Channel
) -> None:
    token = new_token(closed_collector, uses=2)
    reply = await enroll(channel, token.secret)
    assert isinstance(reply, agent_pb2.EnrollResponse), reply
    assert reply.agent_id and reply.credential
    assert token_row(closed_collector, token.id).uses_left == 1


def _expired(collector: Collector) -> str:
    return new_token(collector, created=now() - 2 * HOUR, lifetime=HOUR).secret


def _used_up(collector: Collector) -> str:
    token = new_token(collector, uses=1)
    collector.store.call(lambda s: tokens.spend(s, token.secret, now()))
    return token.secret


def _revoked(collector: Collector) -> str:
    token = new_token(collector, uses=5)
    collector.store.call(lambda s: tokens.revoke(s, token.id, now()))
    return token.secret


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c: "", id="no token"),
        pytest.param(lambda c: tokens.PREFIX + "x" * 43, id="wrong"),
        pytest.param(lambda c: "y" * 10_000, id="oversized"),
        pytest.param(_expired, id="expired"),
        pytest.param(_used_up, id="used up"),
        pytest.param(_revoked, id="revoked"),
    ],
)
async def test_an_unusable_token_is_unauthenticated_and_writes_nothing(
    closed_collector: Collector, channel: grpc.aio.Channel, make: Callable[[Collector], str]
) -> None:
    secret = make(closed_collector)
    before = closed_collector.store.call(_token_rows)
    refused = await enroll(channel, secret)
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "token" in (refused.details() or "")
    assert closed_collector.store.call(counts)["agents"] == 0
    # No use spent, no timestamp moved: the token table is exactly as it was.
    assert closed_collector.store.call(_token_rows) == before


def _token_rows(session: Session) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in session.execute(
            select(
                EnrollmentToken.id,
                EnrollmentToken.uses_left,
                EnrollmentToken.last_used_at,
                EnrollmentToken.revoked_at,
            ).order_by(EnrollmentToken.id)
        )
    ]


async def test_concurrent_enrollments_never_spend_more_uses_than_there_are(
    closed_collector: Collector, channel: grpc.aio.Channel
) -> None:
    token = new_token(closed_collector, uses=5)
    replies = await asyncio.gather(*(enroll(channel, token.secret, n) for n in range(1, 31)))
    enrolled = [r for r in replies if isinstance(r, agent_pb2.EnrollResponse)]
    refused = [r for r in replies if isinstance(r, grpc.aio.AioRpcError)]
    assert len(enrolled) == 5
    assert {r.code() for r in refused} == {grpc.StatusCode.UNAUTHENTICATED}
    assert closed_collector.store.call(counts)["agents"] == 5
    assert token_row(closed_collector, token.id).uses_left == 0


async def test_a_copied_machine_id_takes_nothing_over_without_a_token(
    closed_collector: Collector, channel: grpc.aio.Channel
) -> None:
    first = await enroll(channel, new_token(closed_collector).secret)
    assert isinstance(first, agent_pb2.EnrollResponse)
    # Someone who copied machine-1's id, without a token: refused, the agent keeps working.
    refused = await enroll(channel, "")
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert closed_collector.store.call(
        lambda s: fleet.verify_credential(s, first.agent_id, first.credential)
    )
    # With a valid token the same machine enrolls again: same agent, a new credential.
    again = await enroll(channel, new_token(closed_collector).secret)
    assert isinstance(again, agent_pb2.EnrollResponse)
    assert again.agent_id == first.agent_id and again.credential != first.credential
    assert not closed_collector.store.call(
        lambda s: fleet.verify_credential(s, first.agent_id, first.credential)
    )


async def test_a_revoked_machine_cannot_enroll_again_and_spends_no_use(
    closed_collector: Collector, channel: grpc.aio.Channel
) -> None:
    first = await enroll(channel, new_token(closed_collector).secret)
    assert isinstance(first, agent_pb2.EnrollResponse)
    closed_collector.store.call(lambda s: fleet.revoke(s, first.agent_id, now()))
    token = new_token(closed_collector, uses=3)
    refused = await enroll(channel, token.secret)
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "revoked" in (refused.details() or "")
    assert f"remdiag agents reinstate {first.agent_id}" in (refused.details() or "")
    assert token_row(closed_collector, token.id).uses_left == 3
    row = closed_collector.store.call(lambda s: s.get(Agent, first.agent_id))
    assert row is not None and row.revoked_at is not None

    # Reinstated, the machine enrolls again (same agent), and the old credential stays dead.
    assert closed_collector.store.call(lambda s: fleet.reinstate(s, first.agent_id)) is True
    assert not closed_collector.store.call(
        lambda s: fleet.verify_credential(s, first.agent_id, first.credential)
    )
    again = await enroll(channel, token.secret)
    assert isinstance(again, agent_pb2.EnrollResponse)
    assert again.agent_id == first.agent_id
    assert token_row(closed_collector, token.id).uses_left == 2


async def test_open_enrollment_still_works_on_loopback(tmp_path: Path) -> None:
    running = await serve(
        CollectorSettings(listen="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            reply = await enroll(channel, "")
            assert isinstance(reply, agent_pb2.EnrollResponse)
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
                metadata=(
                    ("x-remdiag-agent-id", reply.agent_id),
                    ("authorization", f"Bearer {reply.credential}"),
                )
            )
            await call.write(hello(reply.agent_id))
            assert (await call.read()).WhichOneof("payload") == "welcome"
            await call.done_writing()
            assert await call.code() == grpc.StatusCode.OK
    finally:
        await running.stop()


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "192.0.2.10:50051", "collector.test:1"])
def test_open_enrollment_is_never_honoured_beyond_loopback(listen: str) -> None:
    settings = CollectorSettings(listen=listen, allow_open_enrollment=True)
    assert not settings.open_enrollment
    assert CollectorSettings(listen="127.0.0.1:1").open_enrollment


# -- remdiag token ... -----------------------------------------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A collector database, migrated as the collector leaves it."""
    url = f"sqlite:///{tmp_path / 'collector.db'}"
    Store(url).close()
    return url


def test_token_create_list_revoke(database: str) -> None:
    created = cli(
        "token", "create", "--enroll", "--expires", "24h", "--uses", "50",
        "--database-url", database,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith(tokens.PREFIX) and "\n" not in secret
    assert "shown once" in created.stderr.lower()

    listed = cli("token", "list", "--json", "--database-url", database)
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)
    assert (entry["state"], entry["uses"], entry["uses_left"]) == ("active", 50, 50)
    assert secret not in listed.output
    expires = datetime.fromisoformat(entry["expires_at"]) - datetime.fromisoformat(
        entry["created_at"]
    )
    assert expires == timedelta(hours=24)
    table = cli("token", "list", "--database-url", database)
    assert table.exit_code == 0 and "active" in table.stdout and secret not in table.output

    revoked = cli("token", "revoke", str(entry["id"]), "--database-url", database)
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout
    again = cli("token", "list", "--json", "--database-url", database)
    assert json.loads(again.stdout)[0]["state"] == "revoked"
    twice = cli("token", "revoke", str(entry["id"]), "--database-url", database)
    assert twice.exit_code == 0 and "already" in twice.stdout


def test_token_create_json_reads_the_environment_like_serve(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMDIAG_COLLECTOR_DATABASE_URL", database)
    created = cli("token", "create", "--enroll", "--json")
    assert created.exit_code == 0, created.output
    shown = json.loads(created.stdout)
    store = Store(database)
    try:
        row = store.call(lambda s: s.get(EnrollmentToken, shown["id"]))
        assert row is not None and row.token_hash == tokens.hash_token(shown["token"])
        assert row.uses == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["token", "create", "--enroll", "--expires", "24x"], "--expires"),
        (["token", "create", "--enroll", "--uses", "0"], "--uses"),
        (["token", "create", "--enroll", "--uses", "many"], "--uses"),
        (["token", "create", "--expires", "24h"], "--enroll"),
        (["token", "revoke", "abc"], "token id"),
    ],
)
def test_bad_token_input_is_one_line_and_exit_2(database: str, args: list[str], named: str) -> None:
    result = cli(*args, "--database-url", database)
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_missing_database_is_named_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "collector.db"
    result = cli("token", "list", "--database-url", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert str(missing) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not missing.exists()


def test_revoking_an_unknown_token_or_agent_fails_with_1(database: str) -> None:
    assert cli("token", "revoke", "42", "--database-url", database).exit_code == 1
    result = cli("agents", "revoke", "no-such-agent", "--database-url", database)
    assert result.exit_code == 1 and "no agent" in result.stderr
