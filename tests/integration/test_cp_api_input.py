"""Bad input on the HTTP API: every out-of-range date is a 422 that names the field and the
fix (never a 500), on the real app with a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from tests.integration.test_cp_samples import provision, sample_body

API = "/api/v1"
# Each overflows once normalised to UTC; the naive one has no zone at all.
OUT_OF_RANGE = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T00:00:00")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp")
    with TestClient(create_app(settings, enable_mqtt=False),
                    raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}


@pytest.mark.parametrize("query", ["audit?since", "versions?created_after",
                                   "versions?created_before"])
def test_out_of_range_query_dates_are_422_with_a_reason(
    api: tuple[TestClient, dict[str, str]], query: str
) -> None:
    client, admin = api
    for value in OUT_OF_RANGE:
        r = client.get(f"{API}/{query}={quote(value)}", headers=admin)
        assert r.status_code == 422, (value, r.status_code, r.text)
        field = query.split("?")[1]
        assert f"query.{field}" in r.json()["detail"], r.text
    # The extremes themselves, in UTC, are still valid filters.
    for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        assert client.get(f"{API}/{query}={quote(value)}", headers=admin).status_code == 200


def test_implausible_capture_times_are_refused(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    device = provision(client, admin, "cam-dates")
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    for value in (*OUT_OF_RANGE, "1970-01-01T00:00:00Z", far):
        r = client.post(f"{API}/samples", json=sample_body(captured_at=value), headers=device)
        assert r.status_code == 422, (value, r.status_code, r.text)
        assert "captured_at" in r.json()["detail"], r.text
    assert "device's clock" in r.json()["detail"]
    ok = client.post(f"{API}/samples", json=sample_body(), headers=device)
    assert ok.status_code == 201, ok.text
