"""The loop closes: the README's first command, checked against the store.

`parkwatch demo` (full story) runs with real processes: the control plane with its
embedded broker and SQLite on the default ``[drift]`` limits (only the pace is the
demo's), the retraining worker, three agents in regions mode on the default camera
settings, looping wide park clips (with ground-truth sidecars), and the simulated
labeller. Night falls on two cameras while their agents run, then the lamps dim there.
Afterwards the test opens the control plane's database and the trained models and
checks each step:

1. the day camera learned its day baseline and the night cameras their night baselines;
   nightfall raised nothing; the day camera raised nothing at all; a drift alert opened
   on the old release after the lamps dimmed, against the night cameras' own night
   baselines, naming them only and the feature that drove it;
2. the worker turned it into a training job on a new dataset version with night images,
   and the challenger beat the champion on held-out day and night images;
3. the challenger was rolled out in shadow first (agreement gate passed), then served,
   then became `champion` and reached the night cameras;
4. afterwards the alert is resolved and nothing is open on the new release;
5. the labeller's labels give realized accuracy per camera, shown beside the estimate;
6. each camera's animals per class (tracks, from its windows) match its clip's sidecar.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, create_engine, select

from control_plane.config.drift import DriftSettings
from control_plane.drift.realized import realized_accuracy
from control_plane.services.park import TRACK_KINDS, summarise_events
from control_plane.store.models import (
    Alert,
    DatasetVersion,
    Device,
    DriftBaseline,
    DriftReport,
    EventRecord,
    ModelAlias,
    ModelVersion,
    Release,
    Rollout,
    RolloutWave,
    Sample,
    TelemetryWindowRecord,
    TrainingJob,
)
from tests.conftest import REPO_ROOT
from trainer.synth.groundtruth import SceneTruth, sidecar_path

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(3000)]
# 18.6 minutes in CI; 25 minutes were not enough on a 2-core machine at load 11-13
# (first training 423 s, retraining more than 490 s).
DEMO_TIMEOUT_S = 2700


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the demo to the end once; its workdir, timeline and exit code."""
    workdir = tmp_path_factory.mktemp("demo")
    log = workdir / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "demo", "--workdir", str(workdir),
             "--duration", "1"],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "COLUMNS": "120"},
        )
        try:
            rc = proc.wait(timeout=DEMO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the demo stops its children on SIGTERM
            try:
                rc = proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
    print(log.read_text(errors="replace")[-6000:])
    assert rc == 0, f"the demo exited {rc}; its output is above"
    timeline = json.loads((workdir / "run" / "timeline.json").read_text())
    with (workdir / "parkwatch.toml").open("rb") as fh:  # the demo's [drift] K and N
        drift = DriftSettings.model_validate(tomllib.load(fh)["drift"])
    return {"workdir": workdir, "timeline": timeline, "drift": drift,
            "db": workdir / "run" / "control-plane" / "parkwatch.db"}


@pytest.fixture(scope="module")
def session(story: dict[str, Any]) -> Any:
    engine = create_engine(f"sqlite:///{story['db']}")
    with Session(engine) as s:
        yield s
    engine.dispose()


def _phase_start(story: dict[str, Any], prefix: str) -> datetime:
    for phase in story["timeline"]["phases"]:
        if phase["title"].startswith(prefix):
            return datetime.fromisoformat(phase["started_at"])
    raise AssertionError(f"no phase {prefix!r} in the demo's timeline")


def _releases(session: Session) -> tuple[Release, Release]:
    rows = session.exec(select(Release).order_by(col(Release.created_at))).all()
    assert len(rows) == 2, [r.release_id for r in rows]
    return rows[0], rows[1]


def _drift_alert(session: Session, release_id: str) -> Alert:
    alert = session.exec(select(Alert).where(Alert.kind == "drift",
                                             Alert.release_id == release_id)).first()
    assert alert is not None, f"no drift alert on {release_id}"
    return alert


def test_the_story_runs_on_the_default_drift_limits(story: dict[str, Any]) -> None:
    """Only the pace differs from the defaults: no limit set by hand, no feature off, and
    every agent's camera tags its conditions the default way (nothing switched off)."""
    pace = {"analysis_interval_s", "range_minutes", "baseline_windows"}
    drift: DriftSettings = story["drift"]
    assert set(drift.model_fields_set) <= pace, drift.model_fields_set
    assert drift.thresholds == {} and not drift.alert_on_skew
    configs = sorted((story["workdir"] / "run" / "agents").glob("*.toml"))
    assert len(configs) == 3
    for config in configs:
        with config.open("rb") as fh:
            for camera in tomllib.load(fh)["cameras"]:
                assert set(camera) == {"camera_id", "source", "loop", "sample_fps", "mode"}, (
                    config.name, camera)


def test_night_baselines_then_a_drift_alert_on_the_night_cameras_only(
    story: dict[str, Any], session: Session
) -> None:
    old, _ = _releases(session)
    night = set(story["timeline"]["night_cameras"])
    day = _day_cameras(story, session)
    nightfall, dimmed = _phase_start(story, "6/"), _phase_start(story, "7/")
    baselines = session.exec(select(DriftBaseline).where(
        DriftBaseline.release_id == old.release_id)).all()
    learned = {(b.device_id, b.condition) for b in baselines if _aware(b.created_at) < dimmed}
    # each camera had its own baseline for the light it sees before the lamps dimmed
    assert learned >= {(d, "day") for d in day} | {(d, "night") for d in night}, learned
    alert = _drift_alert(session, old.release_id)
    print(alert.message)
    assert alert.detail["devices"] and set(alert.detail["devices"]) <= night  # not the day one
    driver = alert.detail["verdict"]
    assert driver["reference"] == "baseline" and driver["condition"] == "night", driver
    assert driver["feature"] and driver["statistic"] > driver["level"] > 0, driver
    assert driver["feature"] in alert.message
    assert _aware(alert.created_at) > dimmed
    for device_id in day:  # not one report of the day camera held drift
        drifted = session.exec(select(DriftReport).where(
            DriftReport.device_id == device_id, col(DriftReport.drifted))).first()
        assert drifted is None, drifted.statistics if drifted else None
    for device_id in night:  # nightfall raised nothing: no drift until the lamps dimmed
        drifted = session.exec(select(DriftReport).where(
            DriftReport.device_id == device_id, col(DriftReport.drifted))
            .order_by(col(DriftReport.created_at))).first()
        assert drifted is None or _aware(drifted.created_at) > dimmed, (
            device_id, drifted.statistics)
        windows = session.exec(select(TelemetryWindowRecord).where(
            TelemetryWindowRecord.device_id == device_id,
            TelemetryWindowRecord.received_at > nightfall,
            TelemetryWindowRecord.received_at < dimmed)
            .order_by(col(TelemetryWindowRecord.received_at))).all()
        tags = [c.get("condition") for w in windows for c in w.payload.get("cameras") or []]
        # the clip ends its day loop first; once night fell, every window was tagged night
        assert "night" in tags and set(tags[tags.index("night"):]) == {"night"}, tags
    before = session.exec(select(Alert).where(Alert.release_id == old.release_id,
                                              Alert.kind == "drift")).all()
    assert [a.message for a in before if _aware(a.created_at) < dimmed] == []
    for a in session.exec(select(Alert).where(Alert.kind == "accuracy")).all():
        print(f"accuracy alert {a.created_at} {a.state}: {a.message}")  # see docs/drift.md


def test_retraining_job_used_night_images_and_the_challenger_won(
    story: dict[str, Any], session: Session
) -> None:
    old, new = _releases(session)
    alert = _drift_alert(session, old.release_id)
    job = session.get(TrainingJob, alert.detail["job_id"])
    assert job is not None and job.status == "succeeded" and job.trigger == "drift"
    name, version = str(job.dataset_version).split("/", 1)
    dataset = session.exec(select(DatasetVersion).where(
        DatasetVersion.name == name, DatasetVersion.version == version)).one()
    images = list(Path(str(dataset.source)).rglob("*.jpg"))
    night = [p for p in images if "night" in p.name]
    print(f"dataset {job.dataset_version}: {len(images)} images, {len(night)} night")
    assert dataset.sample_count == len(images) and len(night) >= 100
    comparison = job.params["comparison"]
    assert comparison["wins"] and comparison["release_id"] == new.release_id
    assert comparison["challenger_accuracy"] >= comparison["champion_accuracy"] + 0.02


def test_challenger_shadowed_then_served_then_promoted(
    story: dict[str, Any], session: Session
) -> None:
    _, new = _releases(session)
    rollouts = session.exec(select(Rollout).where(Rollout.release_id == new.release_id)
                            .order_by(col(Rollout.created_at))).all()
    assert [r.state for r in rollouts] == ["completed", "completed"]
    waves = session.exec(select(RolloutWave).where(
        RolloutWave.rollout_id == rollouts[0].rollout_id).order_by(col(RolloutWave.number))).all()
    assert [(w.number, w.mode, w.state) for w in waves][:2] == [
        (0, "shadow", "passed"), (1, "active", "passed")]
    gates = {g["name"]: g for g in waves[0].gates}
    assert gates["agreement"]["status"] == "pass" and gates["class_shift"]["status"] == "pass"
    version = session.exec(select(ModelVersion).where(
        ModelVersion.id == new.model_version_id)).one()
    champion = session.exec(select(ModelAlias).where(ModelAlias.alias == "champion")).one()
    assert champion.model_version_id == version.id
    for device_id in story["timeline"]["night_cameras"]:
        device = session.get(Device, device_id)
        assert device is not None
        assert (device.reported or {})["active"]["release_id"] == new.release_id


def test_the_alert_resolves_after_the_promotion(story: dict[str, Any], session: Session) -> None:
    old, new = _releases(session)
    assert _drift_alert(session, old.release_id).state == "resolved"
    assert session.exec(select(Alert).where(Alert.release_id == new.release_id,
                                            Alert.kind == "drift")).first() is None
    # The label-free accuracy estimate of crops flickers around the default limit on any
    # release (docs/drift.md): shown, not asserted.
    for a in session.exec(select(Alert).where(Alert.release_id == new.release_id)).all():
        print(f"{a.kind} alert on the new release, {a.state}: {a.message}")


def test_realized_accuracy_from_the_labellers_labels(
    story: dict[str, Any], session: Session
) -> None:
    """Each camera has labelled crops (the simulated labeller), so realized accuracy with
    its interval is reported beside the label-free estimate of its latest report."""
    old, _ = _releases(session)
    rows = realized_accuracy(session, release_id=old.release_id)
    for row in rows:
        print(row)
    cameras = {r.device_id for r in rows}
    assert cameras == set(story["timeline"]["night_cameras"]) | _day_cameras(story, session)
    assert {(r.device_id, r.condition) for r in rows} >= {
        (d, "night") for d in story["timeline"]["night_cameras"]}
    assert all(0 <= r.ci_low <= r.accuracy <= r.ci_high <= 1 for r in rows)
    labelled = session.exec(select(Sample).where(Sample.status == "labelled")).all()
    assert labelled and all((s.note or "").startswith("demo labeller") for s in labelled)
    assert story["timeline"]["labeller"]["labelled"] == len(labelled)
    dimmed = _phase_start(story, "7/")
    # The labeller's budget is per scene, so the dimmed night is measured too, not only
    # the night before it.
    for device_id in story["timeline"]["night_cameras"]:
        assert any(s.device_id == device_id and s.release_id == old.release_id
                   and _aware(s.captured_at) > dimmed for s in labelled), device_id


def test_each_camera_counts_the_animals_of_its_clip(
    story: dict[str, Any], session: Session
) -> None:
    """Animals per class, one per track (its ``animal_appeared``/``animal_left`` events,
    under the label its track ended with, as the park view counts them), against its
    clip's sidecar times the loops the agent played (within 50 %, or one per loop). A
    window's ``animals`` are the distinct animals seen in that window: summed over
    windows, an animal in view for 15 s counts in two or three of them."""
    old, _ = _releases(session)
    videos = Path(story["timeline"]["videos"])
    for device_id in sorted(_day_cameras(story, session)):
        truth = SceneTruth.load(sidecar_path(videos / f"{device_id}.avi"))
        per_loop = truth.animal_counts(0, truth.frame_count, min_visible=0.5)
        windows = session.exec(select(TelemetryWindowRecord).where(
            TelemetryWindowRecord.device_id == device_id,
            TelemetryWindowRecord.release_id == old.release_id)).all()
        seconds = sum((w.window_end - w.window_start).total_seconds() for w in windows)
        loops = seconds / (truth.frame_count / truth.fps)
        events = session.exec(
            select(EventRecord.device_id, EventRecord.received_at, EventRecord.payload)
            .where(EventRecord.device_id == device_id,
                   EventRecord.release_id == old.release_id,
                   col(EventRecord.kind).in_(TRACK_KINDS))
            .order_by(col(EventRecord.received_at), col(EventRecord.seq))).all()
        counted: dict[str, float] = {}
        for tracks in summarise_events(events).values():
            for label, n in tracks.totals().items():
                counted[label] = counted.get(label, 0) + n
        print(f"{device_id}: {loops:.1f} loops; per loop counted "
              f"{ {k: round(v / loops, 2) for k, v in counted.items()} }, truth {per_loop}")
        # Finding the animals (tracks, whatever their label) within a third; each class
        # within one animal per loop or 50 %, which also takes in the small demo model's
        # cat/dog confusion (its realized accuracy is measured and shown on its own). The
        # count goal (10 %) is bench/region_accuracy.py's; measured here: 4.2-4.5 tracks
        # per loop against 4 before regions were split into bodies, 4.9 after.
        total = sum(counted.get(label, 0) for label in ("cat", "dog"))
        expected_total = sum(per_loop.get(label, 0) for label in ("cat", "dog")) * loops
        assert abs(total - expected_total) <= expected_total / 3, (device_id, total)
        for label in ("cat", "dog"):
            expected = per_loop.get(label, 0) * loops
            assert abs(counted.get(label, 0) - expected) <= max(loops, 0.5 * expected), (
                device_id, label, counted)


def _day_cameras(story: dict[str, Any], session: Session) -> set[str]:
    devices = {d.device_id for d in session.exec(select(Device)).all()}
    return devices - set(story["timeline"]["night_cameras"])


def _started_by(workdir: Path, but: int) -> list[Any]:
    """Live processes other than ``but`` whose command line or data dir names ``workdir``
    (the agents' configs and the control plane's PARKWATCH_DATA_DIR are under it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid in (os.getpid(), but):
            continue
        try:
            where = " ".join(proc.info["cmdline"] or []) + proc.environ().get(
                "PARKWATCH_DATA_DIR", "")
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
        if str(workdir) in where:
            found.append(proc)
    return found


def test_sigterm_stops_the_demo_and_every_process_it_started(tmp_path: Path) -> None:
    """A service manager or CI stops the demo with SIGTERM: nothing may be left running."""
    workdir = tmp_path / "demo"
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # 5 epochs: fewer train a model no better than guessing (1 and 2 epochs: test
        # accuracy 0.48-0.53), which the trainer's quality gate refuses to register.
        proc = subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "demo", "--story", "basic", "--epochs", "5",
             "--workdir", str(workdir)], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        # SIGTERM while the first model trains: the control plane and the trainer (a
        # process of its own, minutes of work) must both stop, and nothing else start.
        deadline = time.monotonic() + 900

        def training() -> list[Any]:
            children = _started_by(workdir, but=proc.pid)
            return children if any("train" in c.cmdline() for c in children) else []

        while not (children := training()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        print(f"running before SIGTERM: {[' '.join(c.cmdline()[2:4]) for c in children]}")
        assert len(children) >= 2  # the control plane and the trainer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert "all demo processes stopped" in log.read_text()
        assert _started_by(workdir, but=proc.pid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for child in _started_by(workdir, but=proc.pid):
            child.kill()
