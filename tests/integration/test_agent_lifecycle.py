"""Run-time rollback, shadow mode, motion gating and the local /healthz + /metrics, with a
real Mosquitto, real ONNX models, real video files and an in-process agent."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.agent_kit import (
    Rig,
    agent_log_lines,
    looping_camera,
    make_release,
    running_rig,
    wait_until,
)
from tests.agent_models import build_model
from tests.conftest import Mosquitto, free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def reported_actives(rig: Rig) -> list[tuple[str | None, str | None]]:
    out = []
    for r in rig.observer.of("reported"):
        a = r.get("active") or {}
        out.append((a.get("release_id"), a.get("stage")))
    return out


@pytest.mark.fault
def test_model_that_outputs_nan_on_real_frames_is_rolled_back(rig: Rig) -> None:
    # Fine on the (dark) golden inputs, so it passes the smoke test; NaN on bright frames.
    bad_model = build_model(nan_above=0.5)
    rig.server.add(make_release(rig.key, "good"))
    rig.server.add(make_release(rig.key, "bad", model=bad_model, golden_names=("dark",)))
    config = rig.config(looping_camera(rig.tmp), window_seconds=1, rollback_after_errors=3)
    agent = rig.start_agent(config)
    rig.observer.desire(1, "good")
    rig.wait_healthy("good")

    with agent_log_lines() as lines:
        rig.observer.desire(2, "bad")
        transition = wait_until(lambda: (t := rig.reported().get("last_transition") or {})
                                .get("to_release_id") == "bad" and t["ok"] is False and t,
                                30, "a failed transition to the bad release")
    # Each log line names the device, and the release it is about.
    assert lines and all(line["device_id"] == "park1-gate" for line in lines)
    errors = [line for line in lines if line["msg"].startswith("inference error on gate")]
    assert len(errors) >= 3
    assert all(e["release_id"] == "bad" and e["camera_id"] == "gate" for e in errors)
    verdict = next(line for line in lines if "consecutive frames" in line["msg"])
    assert verdict["release_id"] == "bad" and verdict["level"] == "error"
    assert transition["from_release_id"] == "good"
    assert "rolled back to good" in transition["reason"]
    assert "3 consecutive frames" in transition["reason"]
    assert "non-finite" in transition["reason"]
    history = reported_actives(rig)
    assert ("bad", "warmed") in history, "it was activated first (smoke test passed)"
    assert history.index(("bad", "warmed")) < history.index(("good", "rolled_back"))
    rig.wait_healthy("good")  # and it serves well again
    events = rig.observer.of("events")
    rolled = [e for e in events if e["kind"] == "rolled_back"]
    assert [e["release_id"] for e in rolled] == ["good"] and "bad" in rolled[0]["detail"]
    assert [e["release_id"] for e in events if e["kind"] == "activated"] == ["good", "bad"]
    pointer = json.loads((rig.tmp / "data" / "releases" / "active.json").read_text())
    assert pointer["current"] == "good"
    bad_windows = [w for w in rig.observer.of("telemetry") if w["release_id"] == "bad"]
    assert sum(c["errors"] for w in bad_windows for c in w["cameras"]) >= 3

    # A restart stays on the good model: the handled revision is not tried again.
    downloads = len(rig.server.artifact_requests())
    rig.stop_agent(agent)
    rig.start_agent(config)
    wait_until(lambda: rig.observer.last("status")["state"] == "online",  # type: ignore[index]
               15, "online again")
    rig.wait_healthy("good")
    assert len(rig.server.artifact_requests()) == downloads
    assert rig.reported()["desired_revision"] == 2
    print(f"injected: a release whose model outputs NaN on bright frames -> observed "
          f"rollback to good ({transition['reason'][:90]}), still good after a restart")


def test_shadow_candidate_runs_on_the_same_frames_and_is_never_acted_on(rig: Rig) -> None:
    # The candidate disagrees on every bright frame (its "dog" logit is pushed far down).
    rig.server.add(make_release(rig.key, "r1"))
    rig.server.add(make_release(rig.key, "cand", model=build_model(bias=-20.0)))
    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    mark = len(rig.observer.of("telemetry"))

    rig.observer.desire(2, "cand", mode="shadow", fallback_release_id="r1",
                        settings={"shadow_fraction": 0.5, "window_seconds": 1})
    wait_until(lambda: (rig.reported().get("shadow") or {}).get("stage") == "healthy", 30,
               f"the shadow candidate healthy; reported {rig.reported()}")
    assert rig.reported()["shadow"]["release_id"] == "cand"
    assert rig.active() == ("r1", "healthy")

    def shadow_windows() -> list[dict[str, Any]] | None:
        found = [w for w in rig.observer.of("telemetry")[mark:] if w.get("shadow")
                 and w["shadow"]["frames_compared"] > 0]
        return found if len(found) >= 2 else None

    windows = wait_until(shadow_windows, 30, "windows with a shadow summary")
    for w in windows:
        s, cam = w["shadow"], w["cameras"][0]
        assert w["release_id"] == "r1" and s["release_id"] == "cand"
        assert s["agreements"] == 0 and s["errors"] == 0
        assert s["class_counts"] == {"empty": s["frames_compared"]}
        assert s["latency_ms"] is not None
        assert abs(s["frames_compared"] - 0.5 * cam["frames_inferred"]) <= 1
        assert cam["class_counts"] == {"dog": cam["frames_inferred"]}  # the active model
    labels = {e["label"] for e in rig.observer.of("events") if e["kind"] == "detection"}
    assert labels == {"dog"}, "the candidate's output never becomes an event"
    pointer = json.loads((rig.tmp / "data" / "releases" / "active.json").read_text())
    assert pointer["current"] == "r1"

    # Back to plain active mode: the shadow stops and is no longer reported.
    rig.observer.desire(3, "r1")
    wait_until(lambda: rig.reported().get("desired_revision") == 3
               and rig.reported().get("shadow") is None, 15, "shadow stopped")


def write_static_and_moving(tmp: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    still = np.clip(rng.normal(200, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    paths = (tmp / "static.avi", tmp / "moving.avi")
    writers = [cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
               for p in paths]
    for i in range(40):
        writers[0].write(still)
        writers[1].write(np.roll(still, 8 * i, axis=1))  # a different picture every frame
    for w in writers:
        w.release()
    return paths


def test_motion_gate_skips_static_scenes_and_counts_them(rig: Rig) -> None:
    static, moving = write_static_and_moving(rig.tmp)
    cam: dict[str, Any] = {"loop": True, "sample_fps": 10.0, "mode": "frame"}
    cameras = [
        {**cam, "camera_id": "still-gated", "source": str(static), "motion_gate": True,
         "motion_max_skip_seconds": 2.0},
        {**cam, "camera_id": "still-plain", "source": str(static)},
        {**cam, "camera_id": "moving-gated", "source": str(moving), "motion_gate": True},
    ]
    rig.server.add(make_release(rig.key, "r1"))
    rig.start_agent(rig.config(cameras, window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")

    def sums() -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for w in rig.observer.of("telemetry"):
            if w["release_id"] != "r1":
                continue
            for c in w["cameras"]:
                t = out.setdefault(c["camera_id"], {"windows": 0})
                t["windows"] += 1
                for k in ("frames_captured", "frames_inferred", "frames_skipped", "frames_lost",
                          "errors"):
                    t[k] = t.get(k, 0) + c[k]
        return out

    totals = wait_until(lambda: (s := sums()) and s["still-plain"]["windows"] >= 4
                        and s["still-plain"]["frames_inferred"] >= 30 and s, 30, "windows")
    gated, plain, moving_gated = (totals[k] for k in ("still-gated", "still-plain",
                                                      "moving-gated"))
    # Static + gated: about one inference per motion_max_skip_seconds, the rest skipped.
    assert gated["frames_inferred"] <= plain["frames_inferred"] / 4
    assert gated["frames_inferred"] >= 1
    # A changing scene passes the gate on (nearly) every sampled frame.
    assert moving_gated["frames_inferred"] >= plain["frames_inferred"] * 0.7
    for t in totals.values():  # every captured frame is accounted for
        assert t["errors"] == 0
        handled = t["frames_inferred"] + t["frames_skipped"] + t["frames_lost"]
        assert abs(t["frames_captured"] - handled) <= 1  # a frame may sit in the slot
    assert gated["frames_skipped"] > plain["frames_skipped"]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_and_metrics_are_served(rig: Rig) -> None:
    port = free_port()
    rig.server.add(make_release(rig.key, "r1"))
    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1, metrics_port=port))
    base = f"http://127.0.0.1:{port}"
    status, body = wait_until(lambda: http_get(f"{base}/healthz"), 10, "/healthz answers")
    assert status == 503 and "no model is active" in json.loads(body)["problems"]

    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    status, body = wait_until(lambda: (r := http_get(f"{base}/healthz"))[0] == 200 and r,
                              15, "healthy /healthz")
    health = json.loads(body)
    assert health["status"] == "ok" and health["active"]["release_id"] == "r1"
    assert health["cameras"] == {"gate": "up"} and health["broker_connected"] is True

    def metrics() -> str | None:
        code, text = http_get(f"{base}/metrics")
        return text if code == 200 and 'parkwatch_agent_frames_total{camera_id="gate",' \
            'outcome="inferred"}' in text else None

    text = wait_until(metrics, 15, "frame counters in /metrics")
    assert "parkwatch_agent_latency_ms" in text and "parkwatch_agent_rss_bytes" in text
    assert http_get(f"{base}/nope")[0] == 404


def test_swaps_on_a_running_camera_keep_classifying(rig: Rig) -> None:
    """Model swaps while a camera streams. The old model classifies every window of a
    slow download of the new one; no window is ever without a model; the first window of
    each new model is classified; every captured frame is counted as inferred, skipped or
    lost."""
    ids = ("r1", "r2", "r3")
    for rid in ids:
        rig.server.add(make_release(rig.key, rid))
    agent = rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    for revision, rid in enumerate(ids, 1):
        rig.server.artifact_delay = 3.0 if rid == "r2" else 0.0
        rig.observer.desire(revision, rid)
        rig.wait_healthy(rid)
        wait_until(lambda r=rid: sum(w["release_id"] == r for w in rig.observer.of("telemetry"))
                   >= 3, 15, f"windows of {rid}")
    rig.stop_agent(agent)  # closes the last window and delivers it before going offline
    windows = rig.observer.of("telemetry")
    cams = [w["cameras"][0] for w in windows]
    assert [w["seq"] for w in windows] == list(range(len(windows)))
    captured = sum(c["frames_captured"] for c in cams)
    handled = sum(c["frames_inferred"] + c["frames_skipped"] + c["frames_lost"] for c in cams)
    assert abs(captured - handled) <= 1  # at most the frame in the slot when capture stopped

    served = [w["release_id"] for w in windows]
    first = served.index("r1")
    assert None not in served[first:]
    runs = [rid for i, rid in enumerate(served[first:], first) if rid != served[i - 1]]
    assert runs == list(ids)  # r1, then r2, then r3: each swap replaced the model once
    for rid in ids[1:]:
        opened = windows[served.index(rid)]["cameras"][0]
        assert opened["frames_inferred"] > 0 and opened["errors"] == 0
    # The windows wholly inside r2's download were served, and classified, by r1.
    events = {(e["kind"], e["release_id"]): datetime.fromisoformat(e["at"])
              for e in rig.observer.of("events")}
    began, verified = events["download_started", "r2"], events["download_verified", "r2"]
    during = [w for w in windows if datetime.fromisoformat(w["window_start"]) >= began
              and datetime.fromisoformat(w["window_end"]) <= verified]
    assert during and all(w["release_id"] == "r1" and w["cameras"][0]["frames_inferred"] > 0
                          for w in during)
    lost = [c["frames_lost"] for c in cams[first:]]
    print(f"injected: {len(ids) - 1} swaps on a streaming camera -> observed "
          f"{len(windows) - first} windows all served by a model, "
          f"{sum(c['frames_inferred'] for c in cams[first:])} frames inferred, "
          f"{len(during)} windows inside r2's slow download classified by r1, "
          f"lost per window {lost}")
