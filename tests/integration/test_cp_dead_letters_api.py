"""Dead letters over the HTTP API and in retention, on a real store (SQLite, PostgreSQL):
listed with their reason, replayed one or all by an operator (audited; a read token is
refused), and deleted by retention once past ``dead_letters_keep_days``.

Only the failure is faked: the store's own window writer raises while "broken"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings, DriftSettings, RetentionSettings
from control_plane.drift.scheduler import drift_task
from control_plane.ingest import dead_letter
from control_plane.services import auth, telemetry
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.models import AuditEntry, DeadLetter, TelemetryWindowRecord
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow

API = "/api/v1"
DEVICE = "cam-1"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(data_dir=tmp_path / "data", database_url=database_url,
                                rollout_tick_seconds=0,
                                drift=DriftSettings(analysis_interval_s=0))


@pytest.fixture
def client(settings: ControlPlaneSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        yield c


def headers(settings: ControlPlaneSettings, *scopes: str) -> dict[str, str]:
    engine = create_db_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        _row, secret = auth.create_token(session, f"t-{'-'.join(scopes)}", list(scopes),
                                         who="test")
    engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def kept(settings: ControlPlaneSettings, seqs: Sequence[int],
         received_at: datetime | None = None) -> None:
    engine = create_db_engine(settings.resolved_database_url)
    for seq in seqs:
        dead_letter.keep(engine, kind="telemetry", device_id=DEVICE,
                         message=telemetry_window(DEVICE, seq), error="ValueError: broken",
                         received_at=received_at or datetime.now(UTC))
    engine.dispose()


def test_dead_letters_are_listed_and_replayed_by_an_operator(
    client: TestClient, settings: ControlPlaneSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator, reader = headers(settings, "operate", "read"), headers(settings, "read")
    admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
    r = client.post(f"{API}/devices", json={"device_id": DEVICE}, headers=admin)
    assert r.status_code == 201, r.text
    kept(settings, [1, 2, 3])

    assert client.get(f"{API}/dead-letters").status_code == 401
    r = client.get(f"{API}/dead-letters", params={"limit": 2}, headers=reader)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3 and len(page["items"]) == 2
    first = page["items"][0]
    assert (first["kind"], first["device_id"], first["error"]) == (
        "telemetry", DEVICE, "ValueError: broken")
    assert TelemetryWindow.model_validate_json(first["message"]).seq == 1

    assert client.post(f"{API}/dead-letters/replay", headers=reader).status_code == 403
    r = client.post(f"{API}/dead-letters/{first['id']}/replay", headers=operator)
    assert r.status_code == 200, r.text
    assert r.json() == {"done": 1, "outcomes": {"stored": 1}, "failed": 0, "errors": {}}
    r = client.post(f"{API}/dead-letters/{first['id']}/replay", headers=operator)
    assert r.status_code == 404 and "replayed or deleted already" in r.json()["detail"]

    ingest = telemetry.ingest_windows

    def broken(session: Session, batch: Sequence[TelemetryWindow], **kw: Any) -> Counter[str]:
        if any(w.seq == 3 for w in batch):
            raise KeyError("still broken")
        return ingest(session, batch, **kw)

    monkeypatch.setattr(telemetry, "ingest_windows", broken)
    r = client.post(f"{API}/dead-letters/replay", headers=operator)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["done"], answer["failed"]) == (1, 1)
    assert list(answer["errors"].values()) == ["KeyError: 'still broken'"]
    page = client.get(f"{API}/dead-letters", headers=reader).json()
    assert [(i["id"], i["error"]) for i in page["items"]] == [
        (int(k), v) for k, v in answer["errors"].items()]

    engine = create_db_engine(settings.resolved_database_url)
    with Session(engine) as session:
        seqs = session.exec(select(TelemetryWindowRecord.seq)).all()
        actions = session.exec(select(AuditEntry.action, AuditEntry.target)
                               .where(col(AuditEntry.action) == "dead_letter.replay")).all()
    engine.dispose()
    assert sorted(seqs) == [1, 2]
    assert sorted(t for _a, t in actions) == [f"dead_letter:{first['id']}", "dead_letter:all"]


def test_retention_deletes_dead_letters_past_their_days(
    settings: ControlPlaneSettings, client: TestClient
) -> None:
    now = datetime.now(UTC)
    kept(settings, [1], received_at=now - timedelta(days=31))
    kept(settings, [2], received_at=now - timedelta(days=29))
    assert RetentionSettings().dead_letters_keep_days == 30.0
    engine = create_db_engine(settings.resolved_database_url)
    try:
        assert drift_task(engine, DriftSettings(), RetentionSettings()).run_once()
        with Session(engine) as session:
            left = [TelemetryWindow.model_validate_json(r.message).seq
                    for r in session.exec(select(DeadLetter))]
    finally:
        engine.dispose()
    assert left == [2]
