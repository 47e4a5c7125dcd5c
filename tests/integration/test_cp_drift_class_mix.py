"""A new mix of animals, on SQLite and PostgreSQL through the API: a camera whose animals
become only cats opens the drift alert driven by ``regions.mix`` (the class-mix CUSUM over
its latest windows, ``drift.class_mix``) with its statistic and level, while no single
window exceeds its own level and a camera with the baseline's mix raises nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from control_plane.drift import class_mix, synthetic
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import session_scope
from protocols import TelemetryWindow
from tests.integration.test_cp_drift_baseline import (
    API,
    BASELINE_WINDOWS,
    baselines,
    device_reports,
    park,  # noqa: F401  (a fixture)
    run,
)


def stream(park: dict[str, Any], cats: dict[str, float],  # noqa: F811
           windows: int) -> None:
    """``windows`` one-minute day windows per device, each with region telemetry and 8
    distinct animals, each a cat with the device's probability."""
    with session_scope(park["engine"]) as session:
        for _ in range(windows):
            park["t"] += timedelta(minutes=1)
            for device, share in cats.items():
                park["seq"][device] += 1
                rng = park["rng"]
                payload = synthetic.window(
                    park["profile"], device, park["seq"][device], rng=rng,
                    release_id=park["release"], start=park["t"], frames=150, condition="day")
                camera = payload["cameras"][0]
                camera.update(synthetic.regions(rng, 60))
                n = int(rng.binomial(8, share))
                camera["animals"] = {"cat": n, "dog": 8 - n}
                assert ingest_window(session, TelemetryWindow.model_validate(payload)) == "stored"


def test_only_cats_opens_the_alert_on_the_class_mix(
        park: dict[str, Any]) -> None:  # noqa: F811
    mix = {"cam-a": 0.45, "cam-b": 0.45}
    stream(park, mix, BASELINE_WINDOWS)
    assert run(park)["drifted_devices"][park["release"]] == []
    [learned] = [b for b in baselines(park, active=True) if b["device_id"] == "cam-b"]
    r = park["client"].get(f"{API}/drift/baselines/{learned['id']}", headers=park["h"])
    assert r.status_code == 200, r.text
    assert sum(r.json()["counts"][class_mix.FEATURE]) == 8 * BASELINE_WINDOWS

    stream(park, mix, 10)  # the same mix: nothing
    assert run(park)["drifted_devices"][park["release"]] == []
    cams = device_reports(park)["cam-b"]["statistics"]["baseline"]["cameras"]
    assert cams[0]["class_mix"]["windows"] == 15  # mix_windows: the baseline's last 5 too
    assert not cams[0]["class_mix"]["exceeded"]

    stream(park, {"cam-a": 0.45, "cam-b": 1.0}, 10)  # cam-b: only cats from now on
    body = run(park)
    assert body["drifted_devices"][park["release"]] == ["cam-b"]
    verdict = body["fleet_reports"][0]["statistics"]["verdict"]
    assert verdict["device_id"] == "cam-b" and verdict["feature"] == class_mix.FEATURE
    assert verdict["statistic"] > verdict["level"] > 0
    [cam] = device_reports(park)["cam-b"]["statistics"]["baseline"]["cameras"]
    # No window alone was over a level: the evidence added up over the windows.
    assert cam["drifted"] < 3 and cam["class_mix"]["exceeded"]
    r = park["client"].get(f"{API}/alerts", params={"kind": "drift"}, headers=park["h"])
    [alert] = [a for a in r.json()["items"] if a["state"] != "resolved"]
    assert "cam-b" in alert["message"] and class_mix.FEATURE in alert["message"]
    assert "log likelihood ratio" in alert["message"]
