"""Active learning: ``/api/v1/samples`` on the real control plane app, and a real agent
uploading low-confidence frames to a real uvicorn-served control plane."""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import tomli_w
from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.store.keys import Keyring
from control_plane.testing import registration
from edge_agent import Agent, load_settings
from tests.agent_kit import Observer, make_release, wait_until
from tests.agent_models import LABELS, build_model
from tests.conftest import Mosquitto, free_port, serving

pytestmark = pytest.mark.timeout(120)
API = "/api/v1"


def jpeg_b64(level: int = 120) -> str:
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), level, np.uint8))
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def sample_body(**overrides: Any) -> dict[str, Any]:
    body = {"camera_id": "gate", "release_id": "rel-1", "model_version": "3",
            "predicted_label": "dog", "confidence": 0.41,
            "predictions": {"dog": 0.41, "empty": 0.59},
            "captured_at": datetime.now(UTC).isoformat(), "image_jpeg_b64": jpeg_b64()}
    return {**body, **overrides}


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", public_url="http://cp.test:8000")
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        token = settings.admin_token_path.read_text().strip()
        yield client, {"Authorization": f"Bearer {token}"}


def provision(client: TestClient, admin: dict[str, str], device_id: str) -> dict[str, str]:
    r = client.post(f"{API}/devices", json={"device_id": device_id, "labels": {}}, headers=admin)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_upload_list_label_reject_with_scopes_and_audit(
        cp: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = cp
    device = provision(client, admin, "park1-gate")
    other = provision(client, admin, "park2-pond")
    for level, headers in ((120, device), (90, device), (60, other)):
        r = client.post(f"{API}/samples", json=sample_body(image_jpeg_b64=jpeg_b64(level)),
                        headers=headers)
        assert r.status_code == 201, r.text
    created = r.json()
    assert created["device_id"] == "park2-pond" and created["status"] == "new"
    # The JPEG is in the content store, served like any artifact (read scope).
    img = client.get(f"{API}/artifacts/{created['image_sha256']}", headers=admin)
    assert img.status_code == 200 and img.content.startswith(b"\xff\xd8\xff")
    assert len(img.content) == created["image_size"]

    # Devices upload but do not read the queue; the device id comes from the token.
    assert client.get(f"{API}/samples", headers=device).status_code == 403
    assert client.post(f"{API}/samples", json=sample_body(), headers=admin).status_code == 403
    bad = client.post(f"{API}/samples", json=sample_body(image_jpeg_b64="bm90IGEganBlZw=="),
                      headers=device)
    assert bad.status_code == 422 and "JPEG" in bad.json()["detail"]

    page = client.get(f"{API}/samples", params={"device": "park1-gate"}, headers=admin).json()
    assert page["total"] == 2 and {s["device_id"] for s in page["items"]} == {"park1-gate"}
    first = page["items"][-1]["id"]
    r = client.patch(f"{API}/samples/{first}", json={"status": "labelled", "label": "cat"},
                     headers=admin)
    assert r.status_code == 200 and r.json()["label"] == "cat" and r.json()["updated_by"]
    r = client.patch(f"{API}/samples/{created['id']}", json={"status": "rejected",
                                                              "note": "blurred"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert client.patch(f"{API}/samples/{first}", json={"status": "labelled"},
                        headers=admin).status_code == 422  # a label is needed
    assert client.patch(f"{API}/samples/999", json={"status": "rejected"},
                        headers=admin).status_code == 404

    by_status = {s: client.get(f"{API}/samples", params={"status": s}, headers=admin).json()
                 ["total"] for s in ("new", "labelled", "rejected")}
    assert by_status == {"new": 1, "labelled": 1, "rejected": 1}
    labelled = client.get(f"{API}/samples", params={"label": "cat"}, headers=admin).json()
    assert [s["id"] for s in labelled["items"]] == [first]
    audit = client.get(f"{API}/audit", params={"target": "sample:"}, headers=admin).json()
    assert {e["action"] for e in audit["items"]} == {"sample.labelled", "sample.rejected"}


@pytest.fixture
def cp_server(tmp_path: Path) -> Iterator[tuple[str, ControlPlaneSettings]]:
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", port=port,
                                    public_url=f"http://127.0.0.1:{port}")
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        yield url, settings


@pytest.mark.slow
def test_agent_uploads_rate_limited_low_confidence_frames(
        tmp_path: Path, mosquitto: Mosquitto, cp_server: tuple[str, ControlPlaneSettings]) -> None:
    import httpx

    url, settings = cp_server
    admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
    http = httpx.Client(base_url=url, headers=admin, timeout=10)
    # A release of the tiny model, registered and signed by the control plane itself.
    from protocols import generate_signing_key

    kit = make_release(generate_signing_key(), "unused", build_model())
    model = kit.model
    assert http.post(f"{API}/artifacts", content=model).status_code in (200, 201)
    m = kit.manifest
    reg = registration("tiny", [(m.artifact.sha256, m.artifact.size_bytes, "fp32")],
                       labels=LABELS, input=m.input, outputs=m.outputs,
                       reference_profile=m.reference_profile, golden_inputs=m.golden_inputs)
    r = http.post(f"{API}/models/tiny/versions", content=reg.model_dump_json(by_alias=True),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = http.post(f"{API}/releases", json={"model_name": "tiny", "version": r.json()["version"]})
    assert r.status_code == 201, r.text
    release_id = r.json()["release_id"]
    r = http.post(f"{API}/devices", json={"device_id": "park1-gate", "labels": {}})
    config = tomllib.loads(r.json()["agent_config_toml"])

    # Mid-grey frames: the model is unsure (top confidence about 0.55).
    video = tmp_path / "grey.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    rng = np.random.default_rng(1)
    for _ in range(20):
        writer.write(np.clip(rng.normal(116, 3, (48, 64, 3)), 0, 255).astype(np.uint8))
    writer.release()
    config.update(mqtt_url=mosquitto.url, data_dir=str(tmp_path / "agent"),
                  intra_op_threads=1, sample_max_per_hour=3,
                  cameras=[{"camera_id": "gate", "source": str(video), "loop": True,
                            "sample_fps": 10.0, "mode": "frame"}])
    path = tmp_path / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    observer = Observer(mosquitto.url, key=Keyring(settings.keys_dir).signing_key()[1])
    agent = Agent(load_settings(path))
    agent.start()
    try:
        observer.desire(1, release_id, settings={"upload_samples": True, "window_seconds": 1})

        def samples() -> list[dict[str, Any]] | None:
            page = http.get(f"{API}/samples", params={"device": "park1-gate"}).json()
            return page["items"] if page["total"] >= 3 else None

        items = wait_until(samples, 60, "three samples from the agent")
        # Rate limited: the burst of 3 tokens, then about one per 20 minutes.
        wait_until(lambda: agent.samples.rate_limited > 20, 30, "frames refused by the limit")
        assert len(samples() or []) == 3 and agent.samples.uploaded == 3
        for s in items:
            assert s["release_id"] == release_id and s["camera_id"] == "gate"
            assert s["confidence"] < 0.6 and s["status"] == "new"
            assert set(s["predictions"]) == set(LABELS)
            assert abs(sum(s["predictions"].values()) - 1.0) < 1e-3
            jpeg = http.get(f"{API}/artifacts/{s['image_sha256']}").content
            img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert img.shape == (48, 64, 3) and abs(float(img.mean()) - 116) < 10
        r = http.patch(f"{API}/samples/{items[0]['id']}", json={"status": "labelled",
                                                                  "label": "empty"})
        assert r.status_code == 200
    finally:
        agent.stop()
        observer.close()
        http.close()
