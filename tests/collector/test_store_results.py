"""collector/store/results.py: the bulk insert stores exactly what the ORM would store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import String, cast, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from collector.store.models import CheckResult
from collector.store.results import insert_results, utc_text
from collector.store.runner import Store
from tests.collector.factories import enrolled

OBSERVED = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)  # no microseconds: formats differ there


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def test_bulk_rows_read_and_compare_as_orm_rows_do(store: Store) -> None:
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    row = (
        agent_id,
        1,
        0,
        "disk",
        1,
        3,
        "full",
        '[{"name": "x"}]',
        '{"max": 1}',
        "",
        OBSERVED,
        RECEIVED,
    )
    ids = store.call(lambda s: insert_results(s, [row, (*row[:2], 1, *row[3:])]))
    assert ids[1] == ids[0] + 1

    def add_by_orm(session: Session) -> int:
        result = CheckResult(
            agent_id=agent_id,
            sequence=2,
            position=0,
            check_id="disk",
            category=1,
            status=3,
            summary="full",
            values=[{"name": "x"}],
            thresholds={"max": 1},
            remediation="",
            observed_at=OBSERVED,
            received_at=RECEIVED,
        )
        session.add(result)
        session.flush()
        return result.id

    by_orm = store.call(add_by_orm)
    stored_as = store.call(
        lambda s: s.execute(
            select(
                CheckResult.id,
                cast(CheckResult.observed_at, String),
                cast(CheckResult.received_at, String),
            ).order_by(CheckResult.id)
        ).all()
    )
    # The same text on disk, so comparisons in SQL (e.g. received_at <= a ticket's time) agree.
    assert {(o, r) for _, o, r in stored_as} == {(stored_as[-1][1], stored_as[-1][2])}
    found = store.call(
        lambda s: s.scalars(
            select(CheckResult).where(CheckResult.received_at <= RECEIVED).order_by(CheckResult.id)
        ).all()
    )
    assert [r.id for r in found] == [*ids, by_orm]
    assert found[0].observed_at == OBSERVED and found[0].received_at == RECEIVED
    assert found[0].values == [{"name": "x"}] and found[0].thresholds == {"max": 1}


def test_every_field_comes_back_as_given_in_any_order_of_delivery(store: Store) -> None:
    """Quotes, backslashes, newlines and non-ASCII text survive the bulk path (on PostgreSQL
    one JSON parameter), and each row gets its own id whatever order the rows came in."""
    agent_id = store.call(lambda s: enrolled(s)).agent_id
    tricky = 'C:\\Users\\"ana"\n\tdisque plein à 99 % \u2014 \u2713 \u2028 \\u0041'
    values = [{"name": "x", "value": 1.5, "unit": tricky}]
    thresholds = {"max": 1, "path": tricky}
    rows = [
        (
            agent_id,
            sequence,
            position,
            f"check.{position}",
            1,
            3,
            tricky,
            json.dumps(values),
            json.dumps(thresholds, ensure_ascii=False),
            tricky,
            OBSERVED,
            RECEIVED,
        )
        for sequence, position in ((7, 1), (3, 0), (7, 0), (3, 2))
    ]
    ids = store.call(lambda s: insert_results(s, rows))
    assert len(set(ids)) == 4
    stored = {r.id: r for r in store.call(lambda s: s.scalars(select(CheckResult)).all())}
    for row, id_ in zip(rows, ids, strict=True):
        got = stored[id_]
        assert (got.sequence, got.position, got.check_id) == (row[1], row[2], row[3])
        assert got.summary == tricky and got.remediation == tricky
        assert got.values == values and got.thresholds == thresholds
        assert got.observed_at == OBSERVED and got.received_at == RECEIVED


def test_no_rows_is_no_statement(store: Store) -> None:
    assert store.call(lambda s: insert_results(s, [])) == []


@given(
    at=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_utc_text_is_what_sqlalchemy_stores(at: datetime) -> None:
    dialect = sqlite.dialect()
    column_type = CheckResult.__table__.c.observed_at.type  # type: ignore[attr-defined]
    stores = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert utc_text(at) == stores(at)


def test_utc_text_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc_text(datetime(2026, 1, 1))
