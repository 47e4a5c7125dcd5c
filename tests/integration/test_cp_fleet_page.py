"""``GET /fleet/page``, the dashboard's fleet page in one answer, and what a page load costs
the store (SQLite and PostgreSQL): the same figures as the four calls it replaces, in three
statements, a token looked up once per ``auth_cache_seconds`` and refused at once when
revoked through the API."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings, DriftSettings
from control_plane.services import alerts
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.models import DeadLetter
from tests.integration.test_cp_fleet_summary import seed

API = "/api/v1"
PAGE = {"windows": 2, "limit": 4}


# Only the requests use the store (no engine tick, no drift analysis, the figures and a
# token kept longer than a loaded machine takes for a test): the statements counted are
# theirs.
QUIET: dict[str, Any] = {"rollout_tick_seconds": 0, "drift": DriftSettings(analysis_interval_s=0),
                         "fleet_counts_max_age_seconds": 300, "auth_cache_seconds": 300}


def _client(database_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    config = ControlPlaneSettings(data_dir=tmp_path / "data", database_url=database_url,
                                  **{**QUIET, **settings})
    client = TestClient(create_app(config, enable_mqtt=False))
    client.__enter__()
    client.headers["Authorization"] = f"Bearer {config.admin_token_path.read_text().strip()}"
    return client


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    c = _client(database_url, tmp_path)
    seed(database_url)
    engine = create_db_engine(database_url)
    with session_scope(engine) as s:
        alerts.raise_alert(s, "drift", "warning", "camera a moved", device_id="d0")
        s.add(DeadLetter(kind="telemetry", device_id="d0", message="{}", error="a test's"))
    engine.dispose()
    try:
        yield c
    finally:
        c.__exit__(None, None, None)


@pytest.fixture
def statements(client: TestClient) -> Iterator[list[str]]:
    """The statements the app's engine runs from now on (its pool is the read engine's)."""
    seen: list[str] = []
    engine = client.app.state.parkwatch.engine  # type: ignore[attr-defined]

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    sa.event.listen(engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", count)


def test_the_page_answers_what_its_four_calls_did(client: TestClient) -> None:
    got = client.get(f"{API}/fleet/page", params=PAGE)
    assert got.status_code == 200, got.text
    page = got.json()
    fleet = client.get(f"{API}/fleet", params={"windows": 2}).json()
    for volatile in ("counts_age_s",):
        page["fleet"].pop(volatile), fleet.pop(volatile)
    assert page["fleet"] == fleet
    assert page["devices"] == client.get(f"{API}/devices", params={"limit": 4}).json()
    assert page["devices"]["total"] == 6 and len(page["devices"]["items"]) == 4
    assert page["open_alerts"] == client.get(
        f"{API}/alerts", params={"state": "open", "limit": 1}).json()["total"] == 1
    assert page["dead_letters"] == client.get(
        f"{API}/dead-letters", params={"limit": 1}).json()["total"] == 1
    second = client.get(f"{API}/fleet/page", params={**PAGE, "offset": 4}).json()["devices"]
    assert [d["device_id"] for d in second["items"]] == ["d4", "d5"]
    assert client.get(f"{API}/fleet/page", params={"limit": 0}).status_code == 422


def test_a_page_load_is_three_statements(client: TestClient, statements: list[str]) -> None:
    """Chart points, the totals, the device rows: the four calls before were eleven
    statements (four token lookups, two counts and a listing each for devices, alerts and
    dead letters, the chart points), each a round trip to a PostgreSQL server."""
    client.get(f"{API}/fleet/page", params=PAGE).raise_for_status()  # counts the figures
    statements.clear()
    client.get(f"{API}/fleet/page", params=PAGE).raise_for_status()
    assert len(statements) == 3, statements
    assert not [s for s in statements if "api_token" in s]


def test_a_token_is_looked_up_once_per_max_age(client: TestClient,
                                                statements: list[str]) -> None:
    for _ in range(3):
        client.get(f"{API}/alerts", params={"limit": 1}).raise_for_status()
    assert len([s for s in statements if "from api_token" in s]) == 1, statements


def test_a_revoked_token_is_refused_at_once(client: TestClient) -> None:
    made = client.post(f"{API}/tokens", json={"name": "viewer", "scopes": ["read"]}).json()
    viewer = {"Authorization": f"Bearer {made['token']}"}
    assert client.get(f"{API}/fleet/page", headers=viewer).status_code == 200  # now kept
    client.delete(f"{API}/tokens/{made['id']}").raise_for_status()
    refused = client.get(f"{API}/fleet/page", headers=viewer)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_decommissioned_devices_token_is_refused_at_once(client: TestClient) -> None:
    made = client.post(f"{API}/devices", json={"device_id": "gate-1"}).json()
    device = {"Authorization": f"Bearer {made['token']}"}
    assert client.get(f"{API}/whoami", headers=device).status_code == 200
    client.post(f"{API}/devices/gate-1/decommission",
                params={"reason": "stolen"}).raise_for_status()
    assert client.get(f"{API}/whoami", headers=device).status_code == 401


def test_max_age_zero_looks_the_token_up_at_every_call(database_url: str,
                                                        tmp_path: Path) -> None:
    client = _client(database_url, tmp_path, auth_cache_seconds=0)
    seen: list[str] = []
    engine = client.app.state.parkwatch.engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_a: seen.append(statement.lower()))
    try:
        for _ in range(3):
            client.get(f"{API}/alerts", params={"limit": 1}).raise_for_status()
    finally:
        client.__exit__(None, None, None)
    assert len([s for s in seen if "from api_token" in s]) == 3
