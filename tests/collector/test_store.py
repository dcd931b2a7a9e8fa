"""collector/store: the migration matches the models, SQLite in WAL, one open ticket per check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, column, insert, inspect, select, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector.store.db import MIGRATIONS, downgrade, make_engine, migrate
from collector.store.models import AgentInventory, Base, Ticket, UtcDateTime
from collector.store.runner import Store
from remdiag.vocabulary import Category, Severity, TicketState
from tests.collector.factories import DISK, NOW, enrolled


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def ticket(agent_id: str, state: TicketState = TicketState.NEW, check_id: str = DISK) -> Ticket:
    return Ticket(
        agent_id=agent_id,
        check_id=check_id,
        category=int(Category.HARDWARE),
        severity=int(Severity.WARNING),
        state=int(state),
        title=f"{check_id} failing",
        opened_at=NOW,
        updated_at=NOW,
        failure_count=3,
    )


def test_migration_gives_exactly_the_models_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migration_creates_every_table_and_is_stamped(store: Store) -> None:
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = MigrationContext.configure(connection).get_current_revision()
    assert tables == {*Base.metadata.tables, "alembic_version"}
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert revision == ScriptDirectory.from_config(config).get_current_head()


def test_opening_a_migrated_store_again_changes_nothing(store_url: str, store: Store) -> None:
    store.call(lambda s: enrolled(s))
    again = Store(store_url)
    try:
        assert again.call(lambda s: s.scalar(text("SELECT count(*) FROM agents"))) == 1
    finally:
        again.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'collector.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_second_open_ticket_for_the_same_check_is_refused(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s).agent_id)
    store.call(lambda s: s.add(ticket(agent_id)))

    def second(session: Session) -> None:
        session.add(ticket(agent_id, TicketState.ACKNOWLEDGED))
        session.flush()

    with pytest.raises(IntegrityError):
        store.call(second)
    assert store.call(lambda s: s.scalar(text("SELECT count(*) FROM tickets"))) == 1


def test_index_leaves_other_checks_and_machines_alone(store: Store) -> None:
    first = store.call(lambda s: enrolled(s, 1).agent_id)
    other = store.call(lambda s: enrolled(s, 2).agent_id)
    store.call(lambda s: s.add(ticket(first)))
    store.call(lambda s: s.add(ticket(first, check_id="network.dns")))
    store.call(lambda s: s.add(ticket(other)))
    assert store.call(lambda s: s.scalar(text("SELECT count(*) FROM tickets"))) == 3


@pytest.mark.parametrize("closed", [TicketState.RESOLVED, TicketState.CLOSED])
def test_a_new_open_ticket_is_allowed_once_the_first_is_closed(
    store: Store, closed: TicketState
) -> None:
    agent_id = store.call(lambda s: enrolled(s).agent_id)
    first_id = store.call(lambda s: _add(s, ticket(agent_id)))

    def close_first(session: Session) -> None:
        found = session.get(Ticket, first_id)
        assert found is not None
        found.state = int(closed)
        found.resolved_at = NOW

    store.call(close_first)
    second_id = store.call(lambda s: _add(s, ticket(agent_id)))
    assert second_id != first_id
    # Closed tickets count neither against each other nor against the open one.
    store.call(lambda s: s.add(ticket(agent_id, closed)))


def _add(session: Session, row: Ticket) -> int:
    session.add(row)
    session.flush()
    return row.id


MACHINE_TEXT = ("hostname", "os", "os_version", "architecture", "agent_version")


def test_the_inventory_moves_to_its_own_table_and_back(store_url: str) -> None:
    """Migration 0012 carries each machine's inventory out of `agents`; downgrade brings it back."""
    engine = make_engine(store_url)
    try:
        migrate(engine, "0011")
        # The agents table as 0011 left it, typed as the models typed it then.
        agents_0011 = table(
            "agents",
            *(column(name) for name in (*MACHINE_TEXT, "id", "machine_id", "credential_hash")),
            column("connected"),
            column("last_sequence"),
            column("enrolled_at", UtcDateTime()),
            column("inventory", JSON()),
            column("inventory_at", UtcDateTime()),
            column("inventory_digest"),
        )
        with engine.begin() as connection:
            connection.execute(
                insert(agents_0011),
                [
                    dict.fromkeys(MACHINE_TEXT, f"pc-{n}")
                    | {"id": f"a-{n}", "machine_id": f"m-{n}", "credential_hash": "h"}
                    | {"connected": False, "last_sequence": 0}
                    | {"enrolled_at": NOW, "inventory_at": NOW}
                    | inventory
                    for n, inventory in (
                        (1, {"inventory": {"cpu": {"cores": 4}}, "inventory_digest": "d1"}),
                        (2, {"inventory": None, "inventory_digest": None}),
                    )
                ],
            )
        migrate(engine)
        with Session(engine) as session:
            moved = session.scalars(select(AgentInventory)).all()
            assert [(i.agent_id, i.facts, i.digest) for i in moved] == [
                ("a-1", {"cpu": {"cores": 4}}, "d1")
            ]
            assert moved[0].received_at == NOW
        assert "inventory" not in {c["name"] for c in inspect(engine).get_columns("agents")}

        downgrade(engine, "0011")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, inventory, inventory_digest FROM agents ORDER BY id")
            ).all()
        assert [(r[0], _json(r[1]), r[2]) for r in rows] == [
            ("a-1", {"cpu": {"cores": 4}}, "d1"),
            ("a-2", None, None),
        ]
    finally:
        engine.dispose()


def _json(value: object) -> object:
    """A JSON column read with plain SQL: text on SQLite, decoded by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


def test_upgrading_keeps_the_rows_that_refer_to_a_copied_table(store_url: str) -> None:
    """0004 and 0005 change `tickets` on SQLite by copying it: its events must survive."""
    engine = make_engine(store_url)
    try:
        migrate(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO agents (id, hostname, machine_id, os, os_version, architecture, "
                    "agent_version, credential_hash, enrolled_at, connected, last_sequence) "
                    "VALUES ('a-1', 'pc-1', 'm-1', '', '', '', '', 'h', :at, false, 0)"
                ),
                {"at": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO tickets (id, agent_id, check_id, category, severity, state, "
                    "title, opened_at, updated_at, failure_count) "
                    "VALUES (1, 'a-1', 'disk.free_space', 1, 2, 1, 't', :at, :at, 3)"
                ),
                {"at": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO ticket_events (ticket_id, at, actor, kind, message) "
                    "VALUES (1, :at, 'system', 'opened', 'opened')"
                ),
                {"at": NOW},
            )
        migrate(engine)
        with engine.connect() as connection:
            events = connection.execute(text("SELECT count(*) FROM ticket_events")).scalar()
        assert events == 1
    finally:
        engine.dispose()


def test_the_results_check_time_index_goes_and_comes_back(store_url: str) -> None:
    """Migration 0013 drops the (agent, check, observed_at) index nothing read; downgrade
    restores it."""
    engine = make_engine(store_url)

    def result_indexes() -> set[str]:
        return {i["name"] or "" for i in inspect(engine).get_indexes("check_results")}

    try:
        migrate(engine, "0012")
        assert "ix_check_results_agent_check_time" in result_indexes()
        migrate(engine)
        assert "ix_check_results_agent_check_time" not in result_indexes()
        downgrade(engine, "0012")
        assert "ix_check_results_agent_check_time" in result_indexes()
    finally:
        engine.dispose()
