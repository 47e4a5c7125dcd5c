"""The agent end to end with real parts: Mosquitto, an HTTP release server, ONNX Runtime,
a real video file. Nothing of ours is mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent import Agent
from protocols import generate_signing_key
from tests.agent_kit import (
    Observer,
    Rig,
    looping_camera,
    make_release,
    make_rig,
    release_server,
    running_rig,
    wait_until,
    write_video,
)
from tests.agent_models import build_model
from tests.conftest import REPO_ROOT, Mosquitto, start_mosquitto

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def test_install_resume_activate_healthy_and_counted_telemetry(rig: Rig) -> None:
    video = write_video(rig.tmp / "park.avi", frames=60, fps=20)
    cameras = [{"camera_id": "gate", "source": str(video), "loop": False, "sample_fps": 10.0,
                "mode": "frame"}]
    release = make_release(rig.key, "r1")
    rig.server.add(release)
    # A download interrupted earlier: the agent must continue it, not start over.
    downloads = rig.tmp / "data" / "releases" / "downloads"
    downloads.mkdir(parents=True)
    half = len(release.model) // 2
    (downloads / f"{release.sha256}.part").write_bytes(release.model[:half])

    rig.start_agent(rig.config(cameras, window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    assert rig.server.artifact_requests() == [(f"bytes={half}-", 206)]
    transition = rig.reported()["last_transition"]
    assert transition["ok"] is True and transition["to_release_id"] == "r1"
    assert rig.reported()["desired_revision"] == 1
    assert rig.observer.last("status")["state"] == "online"  # type: ignore[index]

    def all_frames_accounted() -> list[dict[str, Any]] | None:
        windows = rig.observer.of("telemetry")
        cams = [c for w in windows for c in w["cameras"]]
        captured = sum(c["frames_captured"] for c in cams)
        handled = sum(c["frames_inferred"] + c["frames_skipped"] + c["frames_lost"] for c in cams)
        down = bool(cams) and cams[-1]["state"] == "down"
        return windows if down and captured == 60 and handled == 60 else None

    windows = wait_until(all_frames_accounted, 30, "every frame of the file in telemetry")
    seqs = [w["seq"] for w in windows]
    assert seqs == list(range(len(seqs)))
    with_model = [w for w in windows if w["release_id"] == "r1"]
    inferred = sum(c["frames_inferred"] for w in with_model for c in w["cameras"])
    assert inferred > 0
    assert sum(c["class_counts"].get("dog", 0) for w in with_model for c in w["cameras"]) \
        == inferred
    busy = [c for w in with_model for c in w["cameras"] if c["frames_inferred"]]
    assert all(sum(c["confidence_hist"]) == c["frames_inferred"] for c in busy)
    assert all(sum(c["input_hists"]["brightness"]) == c["frames_inferred"] for c in busy)
    assert busy[0]["inference_ms"] is not None

    kinds = [e["kind"] for e in rig.observer.of("events")]
    assert kinds.index("download_started") < kinds.index("download_verified") \
        < kinds.index("activated")
    detections = [e for e in rig.observer.of("events") if e["kind"] == "detection"]
    assert [(d["label"], d["camera_id"]) for d in detections] == [("dog", "gate")]


def test_bad_releases_are_refused_and_the_previous_model_stays(rig: Rig) -> None:
    good = make_release(rig.key, "good")
    forged = make_release(generate_signing_key(), "forged")
    altered = make_release(rig.key, "altered", model=build_model(bias=0.25))
    nan = make_release(rig.key, "nan", model=build_model(nan=True), golden_model=build_model())
    rig.server.add(good)
    rig.server.add(forged)
    rig.server.add(altered, artifact=altered.model[:-4] + b"\x00\x00\x00\x00")
    rig.server.add(nan)

    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    rig.observer.desire(1, "good")
    rig.wait_healthy("good")

    expected = {"forged": "unknown key", "altered": "sha256 mismatch", "nan": "non-finite"}
    for revision, (release_id, reason) in enumerate(expected.items(), start=2):
        rig.observer.desire(revision, release_id)
        transition = rig.wait_transition(release_id)
        assert transition["ok"] is False
        assert reason in transition["reason"]
        assert rig.active() == ("good", "healthy")
        assert rig.reported()["desired_revision"] == revision

    # A shadow candidate that fails verification is refused too; the active model stays.
    rig.observer.desire(5, "forged", mode="shadow", fallback_release_id="good")
    transition = rig.wait_transition("forged")
    assert transition["ok"] is False and "shadow candidate refused" in transition["reason"]
    assert rig.reported()["shadow"]["stage"] == "failed"
    assert rig.active() == ("good", "healthy")

    # Events go through the outbox, the reported state straight out: poll for the last one.
    failed = wait_until(lambda: (f := [e for e in rig.observer.of("events")
                                       if e["kind"] == "activation_failed"])[3:] and f,
                        10, "four activation_failed events")
    assert [e["release_id"] for e in failed] == [*expected, "forged"]
    pointer = (rig.tmp / "data" / "releases" / "active.json").read_text()
    assert '"current": "good"' in pointer
    # Still classifying with the good model after all that.
    last = wait_until(lambda: [w for w in rig.observer.of("telemetry")[-2:]
                               if w["release_id"] == "good"
                               and w["cameras"][0]["frames_inferred"] > 0], 10, "windows")
    assert last[-1]["cameras"][0]["errors"] == 0


def test_restart_comes_back_on_the_active_verified_model(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    config = rig.config(looping_camera(rig.tmp), window_seconds=1)
    agent = rig.start_agent(config)
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    rig.stop_agent(agent)
    assert rig.observer.last("status")["state"] == "offline"  # type: ignore[index]
    requests_before = len(rig.server.requests)
    last_seq = max(w["seq"] for w in rig.observer.of("telemetry"))

    rig.start_agent(config)
    wait_until(lambda: rig.observer.last("status")["state"] == "online", 10,  # type: ignore[index]
               "online again")
    rig.wait_healthy("r1")
    assert len(rig.server.requests) == requests_before, "nothing downloaded on restart"
    wait_until(lambda: max(w["seq"] for w in rig.observer.of("telemetry")) > last_seq, 10,
               "new windows")
    seqs = [w["seq"] for w in rig.observer.of("telemetry")]
    assert sorted(set(seqs)) == list(range(max(seqs) + 1)), "seq continues across restarts"


@pytest.mark.slow
@pytest.mark.fault
def test_broker_outage_loses_no_window(tmp_path: Path) -> None:
    # A broker that keeps sessions across its restart, so the observer misses nothing either.
    state = tmp_path / "broker"
    state.mkdir()
    broker = start_mosquitto(
        state, f"persistence true\npersistence_location {state}/\nuser root\n")
    agent: Agent | None = None
    with release_server() as server:
        rig = make_rig(tmp_path, broker.url, server)
        rig.observer.close()
        rig.observer = Observer(broker.url, client_id="observer", key=rig.key)
        try:
            agent = rig.start_agent(rig.config(looping_camera(tmp_path), window_seconds=1))
            wait_until(lambda: len(rig.observer.of("telemetry")) >= 2, 15, "two windows")
            broker.stop()
            wait_until(lambda: agent.outbox.count() >= 3, 15, "windows piling up in the outbox")
            # Read while the broker is down: once it is back the outbox may drain at once.
            queued = max(r.id for r in agent.outbox.pending(limit=1000))
            broker.start()
            wait_until(lambda: agent.outbox.count() == 0 or
                       min(r.id for r in agent.outbox.pending()) > queued, 30, "outbox drained")

            def caught_up() -> list[int] | None:
                seqs = sorted({w["seq"] for w in rig.observer.of("telemetry")})
                return seqs if len(seqs) >= 6 and seqs == list(range(len(seqs))) else None

            wait_until(caught_up, 30, f"seqs without gaps; have {rig.observer.of('telemetry')}")
            firsts: list[int] = []
            for w in rig.observer.of("telemetry"):
                if w["seq"] not in firsts:
                    firsts.append(w["seq"])
            assert firsts == sorted(firsts), "windows arrived out of order"
            print(f"injected: broker stopped with {queued} rows queued, restarted -> observed "
                  f"seqs {firsts} without gaps, in order")
        finally:
            if agent is not None:
                agent.stop()
            rig.observer.close()
            broker.stop()


@pytest.mark.slow
def test_cli_run_exits_cleanly_on_sigterm(rig: Rig) -> None:
    config = rig.config(looping_camera(rig.tmp), window_seconds=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "parkwatch_cli", "agent", "run", "--config", str(config)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: (rig.observer.last("status") or {}).get("state") == "online", 30,
                   "the agent online")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.decode()[-3000:]
    assert rig.observer.last("status")["state"] == "offline"  # type: ignore[index]
    # The partial window was closed and delivered before exit.
    assert rig.observer.of("telemetry"), out.decode()[-3000:]


@pytest.mark.fault
def test_restart_with_a_corrupted_model_falls_back_to_the_previous(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    rig.server.add(make_release(rig.key, "r2", model=build_model(bias=0.1)))
    config = rig.config(looping_camera(rig.tmp), window_seconds=1)
    agent = rig.start_agent(config)
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    rig.observer.desire(2, "r2")
    rig.wait_healthy("r2")
    rig.stop_agent(agent)
    model = rig.tmp / "data" / "releases" / "r2" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-8])  # e.g. a bad sector
    rig.observer.clear_desired()  # so the agent does not fetch r2 again at once

    rig.start_agent(config)
    rig.wait_healthy("r1")
    transition = rig.reported()["last_transition"]
    assert transition["ok"] is False and "r2" in transition["reason"]
    rolled = [e for e in rig.observer.of("events") if e["kind"] == "rolled_back"]
    assert [e["release_id"] for e in rolled] == ["r1"]
    # Asked again, it downloads a good copy and runs r2.
    downloads = len(rig.server.artifact_requests())
    rig.observer.desire(3, "r2")
    rig.wait_healthy("r2")
    assert len(rig.server.artifact_requests()) == downloads + 1
    print(f"injected: r2's model truncated by 8 bytes on disk -> observed fallback to r1 "
          f"({transition['reason'][:80]}), then a fresh r2 download")
