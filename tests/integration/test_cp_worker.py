"""Continuous training with real parts: drift on a real store raises an alert, the
``parkwatch worker`` process turns it into a job, builds a dataset version with the
labelled samples, runs the real trainer, compares challenger and champion with ONNX
Runtime on the same held-out images, and starts a shadow rollout over a real Mosquitto."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.drift import synthetic
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import registration
from parkwatch_cli import app as root_app
from protocols import InputSpec, OutputSpec, TelemetryWindow
from scripts.synth_images import generate_dataset
from tests.agent_kit import Observer, wait_until
from tests.conftest import Mosquitto, free_port, serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
API = "/api/v1"
# A 2-epoch model on 40 images may be no better than guessing: the trainer's quality gate
# would refuse it, and this test is about the worker's loop, not the model.
TRAINER_TOML = "input_size = 32\nwidth_mult = 0.35\nbatch_size = 16\nval_fraction = 0.2\n" \
               "test_fraction = 0.2\nallow_weak_model = true\n"


def constant_model(label_index: int) -> bytes:
    """A 2-class ONNX model that answers label ``label_index`` whatever it sees."""
    bias = np.zeros(2, np.float32)
    bias[label_index] = 1.0
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
             helper.make_node("MatMul", ["embedding", "W"], ["scores"]),
             helper.make_node("Add", ["scores", "B"], ["logits"])]
    graph = helper.make_graph(
        nodes, "constant",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.zeros((3, 2), np.float32), "W"),
         numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def jpegs(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir())]


@pytest.fixture
def world(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[dict[str, Any]]:
    day, night = tmp_path / "day", tmp_path / "night"
    generate_dataset(day, 20, seed=1, size=48)
    generate_dataset(night, 12, seed=2, size=48, shift="night")
    holdout = tmp_path / "holdout"
    shutil.copytree(night / "dog", holdout / "dog")  # dogs at night: the champion's blind spot
    (tmp_path / "trainer.toml").write_text(TRAINER_TOML)
    port = free_port()
    config = {
        "data_dir": str(tmp_path / "cp"), "port": port, "public_url": f"http://127.0.0.1:{port}",
        "mqtt_url": mosquitto.url, "log_level": "WARNING",
        "drift": {"analysis_interval_s": 0, "range_minutes": 30, "alert_windows": 2,
                  "alert_on_skew": True,  # synthetic night against the training profile
                  "alert_drifted_windows": 2, "alert_min_devices": 1},
        "worker": {"model_name": "petnet", "dataset_dir": str(day), "holdout_dir": str(holdout),
                   "base_dataset_version": "day-1", "holdout_fraction": 0.3, "new_samples": 0,
                   # 0: a tiny 2-epoch model may still collapse to one class on another
                   # CPU; the rule itself is checked against the measured accuracies below.
                   "win_margin": 0.0,
                   "trainer_args": ["--epochs", "2", "--no-quantize",
                                    "--config", str(tmp_path / "trainer.toml")]},
    }
    config_path = tmp_path / "parkwatch.toml"
    config_path.write_bytes(tomli_w.dumps(config).encode())
    settings = ControlPlaneSettings.load(config_path)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        yield {"settings": settings, "config": config_path, "night": night,
               "url": url, "mqtt": mosquitto.url}


def test_drift_alert_to_shadow_rollout_of_a_retrained_challenger(world: dict[str, Any]) -> None:
    import httpx

    settings: ControlPlaneSettings = world["settings"]
    admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
    api = httpx.Client(base_url=world["url"] + API, headers=admin, timeout=30)
    blob = constant_model(0)  # always "cat": blind to dogs at night
    sha = api.post("/artifacts", content=blob).json()["sha256"]
    spec = registration("petnet", [(sha, len(blob), "fp32")], labels=["cat", "dog"],
                        input=InputSpec(width=32, height=32),
                        outputs=OutputSpec(embedding_dim=3),
                        reference_profile=synthetic.profile())
    assert api.post("/models/petnet/versions", json=spec.model_dump(mode="json")).status_code == 201
    assert api.put("/models/petnet/aliases/champion", json={"version": "1"}).status_code == 200
    release = api.post("/releases", json={"model_name": "petnet"}).json()["release_id"]
    device = api.post("/devices", json={"device_id": "cam-a", "labels": {}}).json()
    cam = {"Authorization": f"Bearer {device['token']}"}

    # The camera uploads night frames; an operator labels them with the CLI.
    ids = []
    for data in jpegs(world["night"] / "dog")[:8]:
        body = {"camera_id": "gate", "release_id": release, "predicted_label": "cat",
                "confidence": 0.55, "captured_at": datetime.now(UTC).isoformat(),
                "image_jpeg_b64": base64.b64encode(data).decode(), "model_version": "1"}
        r = httpx.post(world["url"] + API + "/samples", json=body, headers=cam)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    env = {"PARKWATCH_API_URL": world["url"], "PARKWATCH_API_TOKEN": admin["Authorization"][7:]}
    runner = CliRunner()
    for sample_id in ids[:-1]:
        result = runner.invoke(root_app, ["samples", "label", str(sample_id), "dog"], env=env)
        assert result.exit_code == 0 and "labelled as dog" in result.output, result.output
    result = runner.invoke(root_app, ["samples", "reject", str(ids[-1]), "--note", "blurred"],
                           env=env)
    assert result.exit_code == 0 and "rejected" in result.output

    # Night telemetry -> drift report and alert (on demand, through the CLI).
    engine = create_db_engine(settings.resolved_database_url)
    rng = np.random.default_rng(3)
    with session_scope(engine) as session:
        for seq in range(1, 4):
            w = synthetic.window(synthetic.profile(), "cam-a", seq, rng=rng, shift=2.0,
                                 release_id=release, frames=150,
                                 start=datetime.now(UTC) - timedelta(minutes=5 - seq))
            ingest_window(session, TelemetryWindow.model_validate(w))
    engine.dispose()
    result = runner.invoke(root_app, ["drift", "run"], env=env)
    assert result.exit_code == 0 and "DRIFTED" in result.output, result.output
    assert "alerts opened" in result.output
    observer = Observer(world["mqtt"], device_id="cam-a")
    try:
        # The worker, a real process: trigger -> job -> dataset -> trainer -> compare -> shadow.
        proc = subprocess.run([sys.executable, "-m", "parkwatch_cli", "worker", "--once",
                               "--config", str(world["config"])], capture_output=True,
                              text=True, timeout=200, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        jobs = api.get("/jobs").json()["items"]
        assert len(jobs) == 1, jobs
        job = jobs[0]
        assert job["trigger"] == "drift" and job["status"] == "succeeded", job
        assert job["result_version"] == "2" and job["dataset_version"].startswith("parkwatch/")

        # The new dataset version holds the labelled samples, with provenance.
        name, version = job["dataset_version"].split("/")
        dataset = api.get(f"/datasets/{name}/{version}").json()
        used = dataset["detail"]["samples"]
        assert sorted(int(i) for i in used) == sorted(ids[:-1])  # not the rejected one
        assert all(s["device_id"] == "cam-a" and s["label"] == "dog" for s in used.values())
        assert dataset["detail"]["base_version"] == "day-1"
        trained = [i for i, s in used.items() if s["use"] == "train"]
        assert dataset["sample_count"] == 40 + len(trained)
        samples = api.get("/samples", params={"status": "labelled"}).json()["items"]
        assert {s["dataset_version"] for s in samples} == {version}
        listed = runner.invoke(root_app, ["samples", "list", "--status", "labelled", "--json"],
                               env=env)
        assert listed.exit_code == 0 and f'"dataset_version": "{version}"' in listed.output

        # Challenger vs champion on the same held-out images.
        cmp = job["params"]["comparison"]
        held = sum(1 for s in used.values() if s["use"] == "holdout")
        assert cmp["holdout_images"] == 12 + held and cmp["champion"] == "1"
        assert cmp["champion_accuracy"] == 0.0  # always "cat" on dogs
        assert cmp["margin"] == 0.0 and cmp["challenger_accuracy"] >= 0.0
        assert cmp["wins"] == (cmp["challenger_accuracy"] >= cmp["champion_accuracy"])
        assert cmp["wins"], cmp
        alias = api.get("/models/petnet/aliases/challenger").json()
        assert alias["version"] == "2"
        rollout = api.get(f"/rollouts/{cmp['rollout_id']}").json()
        assert rollout["release_id"] == cmp["release_id"]
        assert rollout["waves"][0]["mode"] == "shadow"  # the first phase is shadow
        desired = wait_until(lambda: next(
            (d for d in observer.of("desired") if d.get("release_id") == cmp["release_id"]),
            None), 15, "the shadow desired state on the broker")
        assert desired["mode"] == "shadow"
        # The alert remembers its job: a second round triggers nothing new.
        alert = api.get("/alerts", params={"kind": "drift"}).json()["items"][0]
        assert alert["detail"]["job_id"] == job["job_id"]
        proc = subprocess.run([sys.executable, "-m", "parkwatch_cli", "worker", "--once",
                               "--config", str(world["config"])], capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0 and api.get("/jobs").json()["total"] == 1
        # A sample in a dataset is frozen.
        r = api.patch(f"/samples/{ids[0]}", json={"status": "labelled", "label": "cat"})
        assert r.status_code == 409 and "immutable" in r.json()["detail"]
    finally:
        observer.close()
