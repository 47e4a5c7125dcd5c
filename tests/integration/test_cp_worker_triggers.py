"""Retraining triggers and the worker's fault handling on a real SQLite store (no training:
the trainer here is a process that fails, to check that a job fails with the reason)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.config.worker import WorkerSettings
from control_plane.errors import NotFoundError
from control_plane.retraining.jobs import (
    WorkerContext,
    fail_stale_jobs,
    run_job,
    run_round,
)
from control_plane.retraining.triggers import check_triggers
from control_plane.schemas import JobCreate, JobUpdate
from control_plane.services import alerts, datasets, jobs
from control_plane.store.artifacts import LocalContentStore
from control_plane.store.db import create_db_engine
from control_plane.store.keys import Keyring
from control_plane.store.models import Sample
from control_plane.testing import registration
from protocols import DesiredState

API = "/api/v1"
BLOB = bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"


class Unpublished:
    def __init__(self) -> None:
        self.sent: list[DesiredState] = []

    def publish_desired(self, state: DesiredState) -> None:
        self.sent.append(state)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", drift={"analysis_interval_s": 0})
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        release = {}
        for name in ("petnet", "other"):
            sha = client.post(f"{API}/artifacts", content=BLOB, headers=h).json()["sha256"]
            spec = registration(name, [(sha, len(BLOB), "fp32")])
            client.post(f"{API}/models/{name}/versions", json=spec.model_dump(mode="json"),
                        headers=h)
            release[name] = client.post(f"{API}/releases", json={"model_name": name},
                                        headers=h).json()["release_id"]
        client.post(f"{API}/devices", json={"device_id": "cam-a", "labels": {}}, headers=h)
        engine = create_db_engine(settings.resolved_database_url)
        with Session(engine, expire_on_commit=False) as session:
            yield {"session": session, "settings": settings, "release": release,
                   "engine": engine}
        engine.dispose()


def add_samples(s: dict[str, Any], n: int, status: str = "labelled") -> None:
    cs = LocalContentStore(s["settings"].resolved_artifact_dir)
    sha, size = cs.put([JPEG])
    session: Session = s["session"]
    for i in range(n):
        session.add(Sample(device_id="cam-a", camera_id="gate", predicted_label="dog",
                           confidence=0.5, predictions={}, image_sha256=sha, image_size=size,
                           captured_at=datetime.now(UTC), status=status,
                           label="dog" if status == "labelled" else None, note=str(i)))
    session.commit()


def open_alert(s: dict[str, Any], kind: str, model: str = "petnet") -> int:
    session: Session = s["session"]
    change = alerts.reconcile_alert(session, kind, s["release"][model], firing=True,
                                    severity="warning", message=f"{kind} on {model}", detail={})
    session.commit()
    assert change is not None and change.action == "opened"
    return change.alert.id


def test_new_labelled_samples_trigger_once(store: dict[str, Any]) -> None:
    ws = WorkerSettings(model_name="petnet", new_samples=3)
    add_samples(store, 2)
    add_samples(store, 5, status="new")  # unlabelled: do not count
    assert check_triggers(store["session"], ws) == []
    add_samples(store, 1)
    created = check_triggers(store["session"], ws)
    assert [j.trigger for j in created] == ["new_data"]
    assert created[0].params["samples"] == 3
    assert check_triggers(store["session"], ws) == []  # one pending job per model


def test_schedule_triggers_when_the_last_job_is_old(store: dict[str, Any]) -> None:
    ws = WorkerSettings(model_name="petnet", schedule_hours=1, new_samples=0)
    first = check_triggers(store["session"], ws)
    assert [j.trigger for j in first] == ["schedule"]
    session: Session = store["session"]
    job = jobs.get_job(session, first[0].job_id)
    job.status = "succeeded"
    session.add(job)
    session.commit()
    assert check_triggers(session, ws) == []  # the last job is recent
    later = datetime.now(UTC) + timedelta(hours=2)
    assert [j.trigger for j in check_triggers(session, ws, later)] == ["schedule"]


def test_alerts_trigger_one_job_and_remember_it(store: dict[str, Any]) -> None:
    ws = WorkerSettings(model_name="petnet", new_samples=0)
    drift = open_alert(store, "drift")
    accuracy = open_alert(store, "accuracy")
    open_alert(store, "drift", model="other")  # another model's: not ours
    created = check_triggers(store["session"], ws)
    assert [j.trigger for j in created] == ["drift"] and created[0].params["alert_id"] == drift
    session: Session = store["session"]
    for alert_id in (drift, accuracy):  # both point at the one pending job
        assert alerts.get_alert(session, alert_id).detail["job_id"] == created[0].job_id
    # The analysis updates the alert later: the job it triggered survives the update.
    alerts.reconcile_alert(session, "drift", store["release"]["petnet"], firing=True,
                           severity="warning", message="still drifting", detail={"devices": []})
    session.commit()
    assert alerts.get_alert(session, drift).detail["job_id"] == created[0].job_id
    assert check_triggers(session, ws) == []


def context(s: dict[str, Any], **worker: Any) -> WorkerContext:
    settings = s["settings"].model_copy(update={"worker": WorkerSettings(**worker)})
    return WorkerContext(settings, s["engine"], LocalContentStore(settings.resolved_artifact_dir),
                         Keyring(settings.keys_dir), Unpublished(), token="unused")


def test_a_missing_dataset_folder_fails_the_job_with_the_fix(
    store: dict[str, Any], tmp_path: Path
) -> None:
    ws = {"model_name": "petnet", "new_samples": 1, "dataset_dir": tmp_path / "nope"}
    add_samples(store, 1)
    job = check_triggers(store["session"], WorkerSettings(**ws))[0]
    assert run_job(context(store, **ws), job.job_id) == {}
    row = jobs.get_job(store["session"], job.job_id)
    store["session"].refresh(row)
    assert row.status == "failed" and "worker.dataset_dir" in str(row.message)
    assert store["session"].get(Sample, 1).dataset_version is None  # nothing half-used


def test_a_failing_trainer_fails_the_job_with_its_output(store: dict[str, Any]) -> None:
    ws = {"model_name": "petnet", "new_samples": 1, "holdout_fraction": 0.0,
          "trainer_command": [sys.executable, "-c", "print('out of memory'); raise SystemExit(3)"]}
    add_samples(store, 2)
    job = check_triggers(store["session"], WorkerSettings(**ws))[0]
    assert run_job(context(store, **ws), job.job_id) == {}
    session: Session = store["session"]
    row = jobs.get_job(session, job.job_id)
    session.refresh(row)
    assert row.status == "failed" and "trainer exited 3" in str(row.message)
    assert "out of memory" in str(row.message)
    assert row.dataset_version is not None  # the dataset version was built and kept


def test_no_data_at_all_fails_the_job_and_keeps_the_samples(store: dict[str, Any]) -> None:
    ws = {"model_name": "petnet", "new_samples": 1, "holdout_fraction": 0.999}
    add_samples(store, 1)  # held out: nothing left to train on
    job = check_triggers(store["session"], WorkerSettings(**ws))[0]
    assert run_job(context(store, **ws), job.job_id) == {}
    session: Session = store["session"]
    row = jobs.get_job(session, job.job_id)
    session.refresh(row)
    assert row.status == "failed" and "nothing to train on" in str(row.message)
    sample = session.get(Sample, 1)
    assert sample is not None
    session.refresh(sample)
    assert sample.dataset_version is None


def test_a_missing_sample_image_fails_the_job_and_keeps_the_samples(
    store: dict[str, Any],
) -> None:
    session: Session = store["session"]
    session.add(Sample(device_id="cam-a", camera_id="gate", predicted_label="dog",
                       confidence=0.5, predictions={}, image_sha256="f" * 64, image_size=10,
                       captured_at=datetime.now(UTC), status="labelled", label="dog"))
    session.commit()  # its JPEG is missing from the content store
    run_round(context(store, model_name="petnet", new_samples=1, holdout_fraction=0.0))
    (job,) = jobs.list_jobs(session, status=None, model_name="petnet", limit=5, offset=0)[0]
    session.refresh(job)
    assert job.status == "failed" and "no artifact" in str(job.message)
    sample = session.exec(select(Sample)).one()
    session.refresh(sample)
    assert sample.dataset_version is None  # the half-built version was rolled back


def test_an_unexpected_error_fails_the_job_and_the_worker_goes_on(
    store: dict[str, Any],
) -> None:
    add_samples(store, 1)
    ctx = context(store, model_name="petnet", new_samples=1, holdout_fraction=0.0,
                  trainer_command=["/nonexistent/trainer"])
    run_round(ctx)  # does not raise
    session: Session = store["session"]
    (job,) = jobs.list_jobs(session, status=None, model_name="petnet", limit=5, offset=0)[0]
    session.refresh(job)
    assert job.status == "failed" and "worker error: FileNotFoundError" in str(job.message)
    run_round(ctx)  # the next round runs normally: nothing pending, nothing new
    assert jobs.list_jobs(session, status=None, model_name="petnet", limit=5, offset=0)[1] == 1


def test_jobs_left_running_by_a_dead_worker_are_failed(store: dict[str, Any]) -> None:
    session: Session = store["session"]
    job = check_triggers(session, WorkerSettings(model_name="petnet", schedule_hours=1,
                                                 new_samples=0))[0]
    jobs.update_job(session, job.job_id, JobUpdate(status="running"), who="worker")
    assert fail_stale_jobs(session, stale_after_s=3600) == []  # it reported just now
    assert fail_stale_jobs(session, stale_after_s=0) == [job.job_id]
    row = jobs.get_job(session, job.job_id)
    assert row.status == "failed" and "stopped mid-run" in str(row.message)


def test_each_dataset_version_builds_on_the_previous_one(
    store: dict[str, Any], tmp_path: Path
) -> None:
    session: Session = store["session"]
    cs = LocalContentStore(store["settings"].resolved_artifact_dir)
    base = tmp_path / "base"
    (base / "cat").mkdir(parents=True)
    (base / "cat" / "a.jpg").write_bytes(JPEG)

    def label(n: int, first: int) -> None:
        for i in range(first, first + n):
            sha, size = cs.put([JPEG + bytes([i])])  # a different image each
            session.add(Sample(device_id="cam-a", camera_id="gate", predicted_label="cat",
                               confidence=0.5, predictions={}, image_sha256=sha,
                               image_size=size, captured_at=datetime.now(UTC),
                               status="labelled", label="dog"))
        session.commit()

    def build(version: str) -> datasets.BuiltDataset:
        previous = datasets.latest_built(session, "parkwatch", "worker")
        built = datasets.build_with_samples(
            session, cs, name="parkwatch", version=version,
            base_dir=Path(str(previous.source)) if previous else base,
            base_version=previous.version if previous else "day-1",
            out_root=tmp_path / "out", holdout_fraction=0.5, who="worker")
        session.commit()
        return built

    label(8, 0)
    v1 = build("v1")
    label(8, 8)
    v2 = build("v2")
    files1 = {p.name for p in v1.folder.rglob("*.jpg")}
    files2 = {p.name for p in v2.folder.rglob("*.jpg")}
    assert "a.jpg" in files1 and files1 < files2  # v2 keeps everything v1 trained on
    assert v2.row.detail["base_version"] == "v1" and v1.row.detail["base_version"] == "day-1"
    held1 = {s.id for s in v1.held_out}
    assert held1 and held1 <= {s.id for s in v2.held_out}  # held out for good
    assert not any(f"sample-{i}.jpg" in files2 for i in {s.id for s in v2.held_out})
    assert len(v1.trained) + len(v2.trained) + len(v2.held_out) == 16


def test_the_challenger_is_shadowed_only_when_it_wins_by_the_margin(
    store: dict[str, Any], tmp_path: Path
) -> None:
    import cv2

    from control_plane.retraining.jobs import _compare
    from control_plane.services import aliases, registry
    from protocols import InputSpec, OutputSpec
    from tests.integration.test_cp_worker import constant_model

    session: Session = store["session"]
    cs = LocalContentStore(store["settings"].resolved_artifact_dir)
    for index in (0, 1):  # v2 always says "cat", v3 always "dog"
        blob = constant_model(index)
        sha, size = cs.put([blob])
        registry.record_artifact(session, sha, size, who="test")
        spec = registration("petnet", [(sha, size, "fp32")], labels=["cat", "dog"],
                            input=InputSpec(width=32, height=32),
                            outputs=OutputSpec(embedding_dim=3))
        registry.register_version(session, cs, spec, who="test")
    holdout = tmp_path / "holdout" / "cat"
    holdout.mkdir(parents=True)
    for i in range(4):
        ok, data = cv2.imencode(".jpg", np.full((40, 40, 3), 40 * i, np.uint8))
        assert ok
        (holdout / f"{i}.jpg").write_bytes(data.tobytes())
    ctx = context(store, model_name="petnet", holdout_dir=holdout.parent, win_margin=0.1)
    job = jobs.create_job(session, JobCreate(model_name="petnet"), who="test")

    job.result_version = "3"  # "dog" on cats: 0.0 against the champion's 1.0
    lost = _compare(ctx, session, job, "2", [])
    assert (lost["wins"], lost["challenger_accuracy"], lost["champion_accuracy"]) == (
        False, 0.0, 1.0)
    assert "lost" in lost["summary"] and "rollout_id" not in lost
    with pytest.raises(NotFoundError):
        aliases.get_alias(session, "petnet", "challenger")

    job.result_version = "2"  # "cat" on cats: 1.0 against 0.0
    won = _compare(ctx, session, job, "3", [])
    assert won["wins"] and won["holdout_images"] == 4
    assert aliases.get_alias(session, "petnet", "challenger").version == "2"
    sent = ctx.publisher.sent  # type: ignore[attr-defined]
    assert [(d.device_id, d.mode, d.release_id) for d in sent] == [
        ("cam-a", "shadow", won["release_id"])]
