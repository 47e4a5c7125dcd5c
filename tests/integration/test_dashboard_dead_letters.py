"""Dead letters on the dashboard, in a real headless Chromium against a running control plane
(uvicorn, SQLite, a real Mosquitto): the fleet page shows their count only when there are
some, linking to their page; that page lists each with its reason, and its Replay buttons
store them again (what fails again shows its new error); a read-only token sees no button.

Only the failure is faked: the store's own window writer raises for one window."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from control_plane.ingest import dead_letter
from control_plane.services import telemetry
from control_plane.store import db
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow
from tests.agent_kit import wait_until
from tests.browser_kit import SAFE_DIALOGS, Browser
from tests.conftest import Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane

pytestmark = pytest.mark.slow
DEVICE, BROKEN_SEQ = "park-1", 3
COUNT = "document.querySelector('#dead-letters-count')"


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        yield cp


def keep(cp: ControlPlane, seqs: Sequence[int]) -> None:
    engine = db.create_db_engine(cp.settings.resolved_database_url)
    try:
        for seq in seqs:
            dead_letter.keep(engine, kind="telemetry", device_id=DEVICE,
                             message=telemetry_window(DEVICE, seq),
                             error=f"ValueError: rollup cannot add up window {seq}",
                             received_at=datetime.now(UTC))
    finally:
        engine.dispose()


def test_dead_letters_on_the_dashboard(
    control_plane: ControlPlane, browser: Browser, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cp = control_plane
    page = f"{cp.url}/dashboard/#/{{view}}?token={cp.token}"
    # The server answers before the browser's first navigation starts its clock.
    assert httpx.get(f"{cp.url}/dashboard/", timeout=60).status_code == 200
    none = browser.open(page.format(view="fleet"), values={"count": f"!!{COUNT}"})
    assert none.errors == [] and none.values["count"] is False  # nothing kept: no figure

    ingest = telemetry.ingest_windows

    def broken(session: Session, batch: Sequence[TelemetryWindow], **kw: Any) -> Counter[str]:
        if any(w.seq == BROKEN_SEQ for w in batch):
            raise ValueError("the rollup still cannot add it up")
        return ingest(session, batch, **kw)

    monkeypatch.setattr(telemetry, "ingest_windows", broken)
    with cp.http() as http:
        assert http.post("/api/v1/devices", json={"device_id": DEVICE}).status_code == 201
        read = http.post("/api/v1/tokens", json={"name": "viewer", "scopes": ["read"]})
        assert read.status_code == 201, read.text
        keep(cp, [1, 2, BROKEN_SEQ])

        fleet = browser.open(page.format(view="fleet"), screenshot=tmp_path / "fleet.png",
                             values={"count": f"{COUNT}?.textContent",
                                     "href": f"{COUNT}?.getAttribute('href')"})
        assert fleet.errors == [], fleet.errors
        assert fleet.values["count"] == "3dead letters" and fleet.values["href"] == "#/dead-letters"

        def total() -> int:
            return int(http.get("/api/v1/dead-letters").json()["total"])

        def replay(run: Any) -> None:
            assert run(f"(() => {{ {SAFE_DIALOGS} document.querySelector("
                       "'[data-action=dead-letter-replay]').click(); return true; })()")
            wait_until(lambda: total() == 2, 15, "the first dead letter to be replayed")
            wait_until(lambda: run("document.querySelectorAll('tbody tr').length") == 2, 20,
                       "the page to show the two left")
            run("document.querySelector('[data-action=dead-letters-replay-all]').click()")
            wait_until(lambda: "failed again" in (run(
                "document.querySelector('.action-note.bad')?.textContent") or ""), 15,
                "the answer of replay all")

        listed = browser.open(page.format(view="dead-letters"), act=replay,
                              screenshot=tmp_path / "dead-letters.png", values={
                                  "note": "document.querySelector('.action-note.bad')"
                                          "?.textContent",
                                  "reasons": "[...document.querySelectorAll('td code.bad')]"
                                             ".map((c) => c.textContent)"})
        assert listed.errors == [], listed.errors
        assert "1 done (1 stored), 1 failed again: ValueError: the rollup still cannot add it up" \
            in listed.values["note"]
        left = http.get("/api/v1/dead-letters").json()["items"]
        assert [i["error"] for i in left] == ["ValueError: the rollup still cannot add it up"]
        print(f"screenshots: {tmp_path / 'fleet.png'} {tmp_path / 'dead-letters.png'}")

    viewer = browser.open(f"{cp.url}/dashboard/#/dead-letters?token={read.json()['token']}",
                          values={"buttons": "document.querySelectorAll('button.action').length",
                                  "rows": "document.querySelectorAll('tbody tr').length"})
    assert viewer.errors == [] and viewer.values == {"buttons": 0, "rows": 1}, viewer
    refused = httpx.post(f"{cp.url}/api/v1/dead-letters/replay",
                         headers={"Authorization": f"Bearer {read.json()['token']}"})
    assert refused.status_code == 403, refused.text
