"""PostgreSQL's pooled connections are pinged only after idling (``db.ping_after_idle``):
no round trip for a connection back in the pool moments ago, a dead idle one replaced
before use, and a hot one the server dropped costs the API one 503 to retry, not more."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings, DriftSettings
from control_plane.store import db

pytestmark = pytest.mark.postgres


def _counting_pings(engine: sa.Engine) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return ping(dbapi_conn)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, *pids: int) -> None:
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    admin.dispose()


def test_a_connection_back_moments_ago_is_not_pinged(postgres_url: str) -> None:
    engine = db.create_db_engine(postgres_url)
    pings = _counting_pings(engine)
    try:
        pids = {_backend_pid(engine) for _ in range(5)}
    finally:
        engine.dispose()
    assert len(pids) == 1  # one warm connection, reused
    assert pings == []  # pool_pre_ping: one round trip each


def test_a_dead_idle_connection_is_replaced_before_use(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.2)
    engine = db.create_db_engine(postgres_url)
    pings = _counting_pings(engine)
    try:
        first = _backend_pid(engine)
        _terminate(postgres_url, first)  # a server restart, an idle timeout, a failover
        time.sleep(0.3)
        second = _backend_pid(engine)  # pinged, found dead, replaced: no error
    finally:
        engine.dispose()
    assert second != first
    assert len(pings) == 1


def test_the_api_answers_503_once_when_a_warm_connection_died(
        postgres_url: str, tmp_path: Path) -> None:
    # Nothing in the background shares the pool (the engine's tick, drift, the figures'
    # recount): the first statement on a dead connection is the request's.
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", database_url=postgres_url,
                                    rollout_tick_seconds=0, fleet_counts_max_age_seconds=0,
                                    drift=DriftSettings(analysis_interval_s=0))
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        client.headers["Authorization"] = f"Bearer {settings.admin_token_path.read_text().strip()}"
        client.get("/api/v1/fleet/page").raise_for_status()
        engine = client.app.state.parkwatch.engine  # type: ignore[attr-defined]
        pool_pids = [int(pid) for pid in _app_backends(postgres_url)]
        _terminate(postgres_url, *pool_pids)
        lost = client.get("/api/v1/fleet/page")
        assert lost.status_code == 503, lost.text
        assert lost.json()["detail"] == ("the database lost its connection (now replaced): "
                                         "retry the request")
        assert lost.headers["Retry-After"] == "1"
        assert client.get("/api/v1/fleet/page").status_code == 200
        assert engine.pool.checkedout() == 0


def _app_backends(postgres_url: str) -> list[int]:
    """The other sessions on the test's database: the app's pooled connections."""
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        pids = conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalars().all()
    admin.dispose()
    return list(pids)
