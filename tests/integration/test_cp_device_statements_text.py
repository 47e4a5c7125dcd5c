"""On PostgreSQL a run of device messages, and the release that sends a wave, are
statements whose text does not depend on how many devices they hold (the ids bound as
one array, ``store.among``): psycopg converts each text once and prepares it, and
PostgreSQL plans it once, where an ``IN`` list made a new statement for every length."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from control_plane.store.db import create_db_engine, upgrade
from tests.integration.test_cp_ingest_device_runs import ingest, rollout_traffic
from tests.rollout_kit import GATES, Fleet

pytestmark = pytest.mark.postgres


def _fresh(url: str) -> Engine:
    engine = create_db_engine(url)
    with engine.begin() as conn:  # one fleet per run: the same database, emptied
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(url)
    return create_db_engine(url)


def _texts(url: str, n: int) -> set[str]:
    engine = _fresh(url)
    try:
        _fleet, _ro, messages = rollout_traffic(engine, n)
        statements, _commits = ingest(engine, messages)
    finally:
        engine.dispose()
    # the events' multi-row INSERT carries its rows; every other statement names its ids
    return {s for s in statements if not s.startswith("insert into")}


def test_a_run_of_device_messages_is_the_same_statements_for_10_and_13_devices(
    postgres_url: str,
) -> None:
    assert _texts(postgres_url, 10) == _texts(postgres_url, 13)


def _release_texts(url: str, n: int) -> set[str]:
    engine = _fresh(url)
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(" ".join(statement.split()).lower())

    try:
        fleet = Fleet(engine, n)
        sa.event.listen(engine, "before_cursor_execute", record)
        # planned (the rows: one multi-row INSERT) and the first wave released
        fleet.start(waves=["100%"], max_devices_per_minute=1_000_000,
                    gates=GATES.model_copy(update={"min_windows": 0}))
    finally:
        engine.dispose()
    return {s for s in seen if not s.startswith("insert into")}


def test_a_rollout_planned_and_released_to_9_or_14_devices_is_the_same_statements(
    postgres_url: str,
) -> None:
    assert _release_texts(postgres_url, 9) == _release_texts(postgres_url, 14)
