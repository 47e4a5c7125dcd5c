"""A camera × condition whose production baseline is not learned says why, with the fix,
in the API (``/drift/baselines/learning``) and the CLI (``parkwatch drift learning``), on
SQLite and PostgreSQL through a real uvicorn: too few windows yet, too few with enough
crops, the release not healthy on the device, and a fit that raised (which no longer
stops the release's analysis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.drift import baseline, synthetic
from control_plane.services.devices import apply_reported
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import registration
from parkwatch_cli import app as root_app
from protocols import ReportedState, TelemetryWindow
from tests.conftest import free_port, serving

API = "/api/v1"
BLOB = bytes(range(256)) * 7
NEEDED = 20  # baseline_windows


@pytest.fixture
def site(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[dict[str, Any]]:
    """A served control plane with a release on cam-a and cam-b (healthy) and cam-c
    (still warming up)."""
    port = free_port()
    settings = ControlPlaneSettings(
        data_dir=tmp_path / "cp", database_url=database_url, port=port,
        drift={"analysis_interval_s": 0, "range_minutes": 600, "alert_windows": 4,
               "alert_drifted_windows": 3, "baseline_windows": NEEDED})
    monkeypatch.delenv("PARKWATCH_API_TOKEN", raising=False)
    monkeypatch.delenv("PARKWATCH_CONFIG", raising=False)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        token = settings.admin_token_path.read_text().strip()
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                              timeout=60)
        sha = client.post(f"{API}/artifacts", content=BLOB).json()["sha256"]
        profile = synthetic.profile()
        spec = registration("petnet", [(sha, len(BLOB), "fp32")], reference_profile=profile)
        assert client.post(f"{API}/models/petnet/versions",
                           json=spec.model_dump(mode="json")).status_code == 201
        release = client.post(f"{API}/releases", json={"model_name": "petnet"}).json()[
            "release_id"]
        engine = create_db_engine(settings.resolved_database_url)
        now = datetime.now(UTC)
        for device, stage in (("cam-a", "healthy"), ("cam-b", "healthy"), ("cam-c", "warmed")):
            assert client.post(f"{API}/devices", json={"device_id": device}).status_code == 201
            report_active(engine, device, release, stage, now)
        yield {"client": client, "engine": engine, "profile": profile, "release": release,
               "seq": {}, "rng": np.random.default_rng(5), "t": now - timedelta(minutes=300),
               "env": {"PARKWATCH_API_URL": url, "PARKWATCH_DATA_DIR": str(settings.data_dir)}}
        client.close()
        engine.dispose()


def report_active(engine: Any, device: str, release: str, stage: str,
                  since: datetime) -> None:
    """``device`` reports ``release`` active at ``stage`` (as its agent's reported state)."""
    with session_scope(engine) as session:
        apply_reported(session, ReportedState.model_validate({
            "device_id": device, "agent_version": "1.0",
            "active": {"release_id": release, "model_version": "petnet:1", "stage": stage,
                       "since": since.isoformat()}}))


def promote(site: dict[str, Any], device: str) -> str:
    """A new release of petnet, reported healthy on ``device``; its id."""
    newer: str = site["client"].post(f"{API}/releases", json={"model_name": "petnet"}).json()[
        "release_id"]
    report_active(site["engine"], device, newer, "healthy", datetime.now(UTC))
    return newer


def stream(site: dict[str, Any], cams: dict[str, tuple[str, int]], windows: int,
           regions: bool = False) -> None:
    """``windows`` one-minute windows per device: (condition, frames) each (``regions``:
    with a regions-mode agent's region telemetry)."""
    with session_scope(site["engine"]) as session:
        for _ in range(windows):
            site["t"] += timedelta(minutes=1)
            for device, (condition, frames) in cams.items():
                site["seq"][device] = site["seq"].get(device, 0) + 1
                payload = synthetic.window(
                    site["profile"], device, site["seq"][device], rng=site["rng"],
                    release_id=site["release"], start=site["t"], frames=frames,
                    condition=condition)
                if regions:
                    payload["cameras"][0] |= synthetic.regions(site["rng"], frames)
                assert ingest_window(session, TelemetryWindow.model_validate(payload)) == "stored"


def run(site: dict[str, Any]) -> dict[str, Any]:
    r = site["client"].post(f"{API}/drift/run", json={})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def learning(site: dict[str, Any], **params: Any) -> dict[tuple[str, str], dict[str, Any]]:
    r = site["client"].get(f"{API}/drift/baselines/learning", params=params)
    assert r.status_code == 200, r.text
    return {(i["device_id"], i["condition"]): i for i in r.json()["items"]}


def cli(site: dict[str, Any], *args: str) -> str:
    # Wide enough that rich does not fold a cell across lines.
    result = CliRunner().invoke(root_app, ["drift", *args], env=site["env"] | {"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_baseline_not_learned_says_why_and_the_fix(site: dict[str, Any]) -> None:
    busy, quiet = 150, 5  # crops per window; min_samples is 30
    cams = {"cam-a": ("night", busy), "cam-b": ("day", quiet), "cam-c": ("day", busy)}
    stream(site, cams, 12)
    run(site)
    why = learning(site)
    assert set(why) == {("cam-a", "night"), ("cam-b", "day"), ("cam-c", "day")}
    a = why[("cam-a", "night")]
    assert (a["reason"], a["windows"], a["windows_needed"]) == ("too_few_windows", 12, NEEDED)
    assert a["message"] == "needs 20 windows at night, has 12: it fits by itself once they arrive"
    c = why[("cam-c", "day")]
    assert c["reason"] == "release_not_healthy" and "stage warmed" in c["message"]
    assert "parkwatch devices show cam-c" in c["message"]

    stream(site, cams, NEEDED - 12)
    run(site)
    why = learning(site)
    # cam-a's night baseline is learned: it leaves the list.
    r = site["client"].get(f"{API}/drift/baselines", params={"active": True})
    assert [(b["device_id"], b["condition"]) for b in r.json()["items"]] == [("cam-a", "night")]
    assert set(why) == {("cam-b", "day"), ("cam-c", "day")}
    b = why[("cam-b", "day")]
    assert (b["reason"], b["windows"], b["busy_windows"]) == ("too_few_busy_windows", NEEDED, 0)
    assert b["message"].startswith("0 of its 20 windows by day had 30 crops or more "
                                   "(drift.min_samples), 8 needed to fit a level")
    assert "lower drift.min_samples" in b["message"]
    assert b["first_tried_at"] < b["tried_at"]
    assert set(learning(site, device="cam-b")) == {("cam-b", "day")}

    text = cli(site, "learning")
    assert "2 camera × condition(s) without a baseline" in text
    assert f"cam-b/gate day (release {site['release']}, too_few_busy_windows): 0 of its" in text
    assert "cam-c/gate day" in text and "waits for release" in text
    assert "cam-a" not in text
    assert "cam-c" not in cli(site, "learning", "--device", "cam-b")


def test_a_fit_that_raises_is_named_and_the_other_cameras_go_on(
        site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # A defect in fitting one camera's windows (injected: valid telemetry raises none
    # known) used to fail the whole release's analysis.
    learn = baseline.learn

    def failing(profile: Any, windows: list[dict[str, Any]], **kw: Any) -> Any:
        if windows and windows[0].get("condition") == "night":
            raise FloatingPointError("overflow in replay")
        return learn(profile, windows, **kw)

    monkeypatch.setattr(baseline, "learn", failing)
    stream(site, {"cam-a": ("night", 150), "cam-b": ("day", 150)}, NEEDED)
    body = run(site)
    assert body["failed_releases"] == {}
    r = site["client"].get(f"{API}/drift/baselines", params={"active": True})
    assert [(b["device_id"], b["condition"]) for b in r.json()["items"]] == [("cam-b", "day")]
    a = learning(site)[("cam-a", "night")]
    assert a["reason"] == "fit_failed"
    assert "FloatingPointError: overflow in replay" in a["message"]


def test_drift_list_names_the_feature_behind_each_verdict(site: dict[str, Any]) -> None:
    stream(site, {"cam-a": ("day", 150)}, NEEDED)
    run(site)
    r = site["client"].get(f"{API}/drift", params={"device": "cam-a", "limit": 1})
    v = r.json()["items"][0]["statistics"]["verdict"]
    assert v["reference"] == "baseline" and v["feature"]
    text = cli(site, "list", "--device", "cam-a")
    assert (f"{v['feature']} {v['statistic']:.3f} / {v['level']:.3f} vs baseline (gate, day)"
            in text), text


def test_a_rare_condition_learns_from_windows_kept_across_analyses(site: dict[str, Any]) -> None:
    # A baseline was learned from the device's latest 8 x baseline_windows windows only:
    # two dusk spells of 10 windows, 160 day windows apart, never made the 20 it needs.
    for condition, windows in (("day", 8 * NEEDED), ("dusk", 10)):
        stream(site, {"cam-a": (condition, 150)}, windows)
    run(site)
    dusk = learning(site)[("cam-a", "dusk")]
    assert (dusk["reason"], dusk["windows"]) == ("too_few_windows", 10)
    assert dusk["message"] == (
        "needs 20 windows at dusk, has 10: it fits by itself once they arrive")
    for condition, windows in (("day", 8 * NEEDED), ("dusk", 10)):
        stream(site, {"cam-a": (condition, 150)}, windows)
    run(site)
    r = site["client"].get(f"{API}/drift/baselines", params={"condition": "dusk"})
    [b] = r.json()["items"]
    assert (b["state"], b["window_count"]) == ("active", NEEDED)
    assert ("cam-a", "dusk") not in learning(site)


def test_a_baseline_that_judges_few_features_says_why_in_the_cli(site: dict[str, Any]) -> None:
    # 5 busy windows of 20: too few to fit its crop features' levels (its region
    # telemetry's features get theirs).
    stream(site, {"cam-a": ("day", 5)}, NEEDED - 5, regions=True)
    stream(site, {"cam-a": ("day", 150)}, 5, regions=True)
    run(site)
    [b] = site["client"].get(f"{API}/drift/baselines").json()["items"]
    assert b["unfitted"] and b["unfitted_why"]
    text = cli(site, "baselines")
    assert f"baseline {b['id']} (cam-a/gate day): {b['unfitted_why']}" in text


def test_a_promotion_leaves_the_old_releases_attempts_behind(site: dict[str, Any]) -> None:
    stream(site, {"cam-a": ("night", 150), "cam-b": ("day", 150)}, 5)
    run(site)
    assert set(learning(site)) == {("cam-a", "night"), ("cam-b", "day")}
    # cam-a now runs another release: its old release's camera is no longer learning.
    promote(site, "cam-a")
    assert set(learning(site)) == {("cam-b", "day")}
    assert set(learning(site, every_release=True)) == {("cam-a", "night"), ("cam-b", "day")}
    r = site["client"].get(f"{API}/drift/baselines/learning", params={"limit": 1})
    assert r.json()["total"] == 1
    assert "cam-a" not in cli(site, "learning")
    assert "cam-a/gate night" in cli(site, "learning", "--every-release")


def test_an_analysis_after_a_promotion_drops_the_old_releases_attempts(
        site: dict[str, Any]) -> None:
    # The old release's windows stay in the analysis range after a promotion: its rows
    # were recorded again ("release ... active") and kept for good, one set per release.
    stream(site, {"cam-a": ("night", 150), "cam-b": ("day", 150)}, 5)
    run(site)
    promote(site, "cam-a")
    run(site)
    every = learning(site, every_release=True)
    assert set(every) == {("cam-b", "day")}
    assert every[("cam-b", "day")]["release_id"] == site["release"]


def test_a_fleets_first_baselines_clear_their_attempts_in_one_analysis(
        database_url: str) -> None:
    # 20,000 keys learned at once (a chunk of 1,000 devices, 5 cameras, 4 conditions):
    # 80,000 values, more than a PostgreSQL statement may bind (65,535).
    from sqlmodel import select

    from control_plane.drift import unlearned
    from control_plane.store.db import upgrade
    from control_plane.store.models import Device, DriftBaselineAttempt

    upgrade(database_url)
    engine = create_db_engine(database_url)
    keys = [(f"d{i}", f"c{j}", k, "r") for i in range(1000) for j in range(5)
            for k in ("day", "dusk", "night", "ir")]
    try:
        with session_scope(engine) as session:
            session.add(Device(device_id="d999", labels={}))
            session.flush()
            unlearned.record(session, [unlearned.Attempt(
                *keys[-1], "too_few_windows", "needs 240", 12, 240)], [])
        with session_scope(engine) as session:
            assert len(session.exec(select(DriftBaselineAttempt)).all()) == 1
            unlearned.record(session, [], keys)
        with session_scope(engine) as session:
            assert session.exec(select(DriftBaselineAttempt)).all() == []
    finally:
        engine.dispose()


def test_the_cli_calls_an_old_releases_active_baselines_superseded(site: dict[str, Any]) -> None:
    # After a promotion the old release's baselines stay active (a rollback judges against
    # them again); `--active` listed them as plain "active", beside nothing to say they
    # no longer judge the camera.
    stream(site, {"cam-a": ("day", 150), "cam-b": ("day", 150)}, NEEDED)
    run(site)
    promote(site, "cam-a")
    items = site["client"].get(f"{API}/drift/baselines", params={"active": True}).json()["items"]
    assert {b["device_id"]: b["superseded"] for b in items} == {"cam-a": True, "cam-b": False}
    text = cli(site, "baselines", "--active")
    lines = {d: next(line for line in text.splitlines() if f" {d} " in line)
             for d in ("cam-a", "cam-b")}
    assert " superseded " in lines["cam-a"] and " active " not in lines["cam-a"]
    assert " active " in lines["cam-b"]
    assert (f"superseded: cam-a's baselines of release {site['release']} judge nothing while "
            "it runs another release; kept for a rollback to it") in text
