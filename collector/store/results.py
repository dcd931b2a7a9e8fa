"""Writes check results and the check states they move in bulk: the hot path of ingest, a few
statements per group of batches.

Result rows arrive as tuples in `COLUMNS` order with `values` and `thresholds` already
JSON-encoded. On SQLite the rows go straight to the driver's executemany and the ids are read
back from `last_insert_rowid()`: SQLAlchemy's per-row parameter processing was a third of
ingest's time. The states' UPDATE goes to the driver the same way. On PostgreSQL each of the
three writes (results, new states, changed states) is one statement whose one parameter is the
rows as a JSON array, whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Connection, String, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from collector.store.models import CheckResult, CheckState

COLUMNS = (
    "agent_id",
    "sequence",
    "position",
    "check_id",
    "category",
    "status",
    "summary",
    "values",
    "thresholds",
    "remediation",
    "observed_at",
    "received_at",
)
Row = tuple[Any, ...]
STATE_COLUMNS = (
    "status",
    "summary",
    "observed_at",
    "consecutive_failures",
    "consecutive_passes",
    "open_ticket_id",
    "last_failure_id",
    "changes",
    "last_ticket_id",
)
"""A check state's columns the rules change; a state row is these, then agent_id, check_id."""


_TABLE = cast(Table, CheckResult.__table__)
_QUOTED_COLUMNS = ", ".join(f'"{c}"' for c in COLUMNS)  # "values" is an SQL keyword
_SQLITE_INSERT = (
    f"INSERT INTO {_TABLE.name} ({_QUOTED_COLUMNS}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_OBSERVED, _RECEIVED = COLUMNS.index("observed_at"), COLUMNS.index("received_at")


_STATES = cast(Table, CheckState.__table__)
_SQLITE_UPDATE_STATES = (
    f"UPDATE {_STATES.name} SET {', '.join(f'{c} = ?' for c in STATE_COLUMNS)} "
    "WHERE agent_id = ? AND check_id = ?"
)
_SQLITE_INSERT_STATES = (
    f"INSERT INTO {_STATES.name} ({', '.join(STATE_COLUMNS)}, agent_id, check_id) "
    f"VALUES ({', '.join('?' for _ in range(len(STATE_COLUMNS) + 2))})"
)
_STATE_OBSERVED, _STATE_CHANGES = STATE_COLUMNS.index("observed_at"), STATE_COLUMNS.index("changes")


def _from_json_row(table: Table, columns: Sequence[str], row: str, json_as_text: bool) -> list[str]:
    """PostgreSQL expressions taking `columns` of `table` from `row`, a JSON array of a row's
    values in that order, each as its column's type (compiled from the model, so the two never
    drift apart). A JSON column's value is encoded JSON text (`json_as_text`) or JSON itself.
    Text stays uncast: an explicit cast to VARCHAR(n) would cut a longer value short instead of
    failing as the assignment does."""
    expressions = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, JSON) and not json_as_text:
            expressions.append(f"{row}->{i}")
        elif isinstance(column_type, String):
            expressions.append(f"{row}->>{i}")
        else:
            expressions.append(f"({row}->>{i})::{column_type.compile(dialect=_POSTGRESQL)}")
    return expressions


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
# A group's states are one statement with one JSON parameter on PostgreSQL, as the results are
# (see _POSTGRESQL_INSERT). Their `changes` arrive as a list, not encoded text.
*_STATE_VALUES, _AGENT_ID, _CHECK_ID = _from_json_row(
    _STATES, (*STATE_COLUMNS, "agent_id", "check_id"), "state", json_as_text=False
)
_POSTGRESQL_UPDATE_STATES = (
    f"UPDATE {_STATES.name} SET "
    f"{', '.join(f'{c} = {v}' for c, v in zip(STATE_COLUMNS, _STATE_VALUES, strict=True))} "
    "FROM json_array_elements(%s::json) AS given(state) "
    f"WHERE agent_id = {_AGENT_ID} AND check_id = {_CHECK_ID}"
)
_POSTGRESQL_INSERT_STATES = (
    f"INSERT INTO {_STATES.name} ({', '.join(STATE_COLUMNS)}, agent_id, check_id) "
    f"SELECT {', '.join(_STATE_VALUES)}, {_AGENT_ID}, {_CHECK_ID} "
    "FROM json_array_elements(%s::json) AS given(state)"
)


def update_states(session: Session, rows: Sequence[Row]) -> None:
    """Write `rows` (STATE_COLUMNS, then agent_id and check_id) over the stored states."""
    _write_state_rows(session, rows, _SQLITE_UPDATE_STATES, _POSTGRESQL_UPDATE_STATES)


def insert_states(session: Session, rows: Sequence[Row]) -> None:
    """Store `rows` (STATE_COLUMNS, then agent_id and check_id): checks new to their machine."""
    _write_state_rows(session, rows, _SQLITE_INSERT_STATES, _POSTGRESQL_INSERT_STATES)


def _write_state_rows(session: Session, rows: Sequence[Row], sqlite: str, postgresql: str) -> None:
    """Straight to the driver: on SQLite an executemany, on PostgreSQL one statement."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(postgresql, (orjson.dumps(rows).decode(),))
        return
    connection.exec_driver_sql(
        sqlite,
        [
            (
                *row[:_STATE_OBSERVED],
                utc_text(row[_STATE_OBSERVED]),
                *row[_STATE_OBSERVED + 1 : _STATE_CHANGES],
                orjson.dumps(row[_STATE_CHANGES]).decode(),
                *row[_STATE_CHANGES + 1 :],
            )
            for row in rows
        ],
    )


def utc_text(value: datetime) -> str:
    """An aware datetime as SQLAlchemy's SQLite DATETIME stores it in a UTC column
    ("2026-11-25 01:02:03.000004"), a few times faster than its bind processor: this runs for
    every stored result and state."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def insert_results(session: Session, rows: Sequence[Row]) -> list[int]:
    """Insert `rows` in the session's transaction; their ids, in the same order."""
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return _insert_sqlite(connection, rows)
    return _insert_postgresql(connection, rows)


_POSTGRESQL_SELECTED = ", ".join(_from_json_row(_TABLE, COLUMNS, "row", json_as_text=True))
_POSTGRESQL_INSERT = (
    f"INSERT INTO {_TABLE.name} ({_QUOTED_COLUMNS}) SELECT {_POSTGRESQL_SELECTED} "
    "FROM json_array_elements(%s::json) WITH ORDINALITY AS given(row, ord) "
    "ORDER BY ord RETURNING id, agent_id, sequence, position"
)
"""One statement and one parameter whatever the number of rows: the rows as one JSON array,
which orjson encodes in C and PostgreSQL takes apart in C. SQLAlchemy's multi-row VALUES had
psycopg parse a statement with thousands of placeholders on every call (45% of ingest's time
on PostgreSQL); one array parameter per column left psycopg quoting every element in Python
(40%)."""


def _insert_postgresql(connection: Connection, rows: Sequence[Row]) -> list[int]:
    given = orjson.dumps(rows).decode()  # datetimes as RFC 3339, which timestamptz reads
    inserted = connection.exec_driver_sql(_POSTGRESQL_INSERT, (given,)).all()
    # Matched by delivery (unique), so the ids' order never rests on RETURNING's.
    ids = {(agent_id, sequence, position): id_ for id_, agent_id, sequence, position in inserted}
    return [ids[row[0], row[1], row[2]] for row in rows]


def _insert_sqlite(connection: Connection, rows: Sequence[Row]) -> list[int]:
    received: dict[Any, str] = {}  # one received_at per batch: formatted once
    prepared = []
    for row in rows:
        at = row[_RECEIVED]
        if at not in received:
            received[at] = utc_text(at)
        prepared.append((*row[:_OBSERVED], utc_text(row[_OBSERVED]), received[at]))
    connection.exec_driver_sql(_SQLITE_INSERT, prepared)
    last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    # This transaction is SQLite's only writer and `id` is the rowid, so the rows took the
    # consecutive ids ending at `last`. Checked on the first row all the same: cheap, and a
    # wrong id would attach tickets to the wrong evidence.
    first = last - len(rows) + 1
    delivery = connection.exec_driver_sql(
        f"SELECT agent_id, sequence, position FROM {_TABLE.name} WHERE id = ?", (first,)
    ).one()
    if tuple(delivery) != tuple(rows[0][:3]):
        raise RuntimeError(f"SQLite gave check results ids that are not consecutive from {first}")
    return list(range(first, last + 1))
