"""Candidate negatives end to end: a real agent in regions mode on a real MJPG clip (a
person crosses an empty lawn), real Mosquitto, a real uvicorn-served control plane on
SQLite; negatives arrive tagged, an operator confirms them with the CLI (one is
relabelled), and the dataset export puts the confirmed ones in the "other" class."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import tomli_w
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import datasets
from control_plane.store.artifacts import LocalContentStore
from control_plane.store.db import create_db_engine
from control_plane.store.keys import Keyring
from control_plane.testing import registration
from edge_agent import Agent, load_settings
from parkwatch_cli import app as root_app
from tests.agent_kit import Observer, wait_until
from tests.conftest import Mosquitto, free_port, serving
from tests.integration.test_cp_samples import provision, sample_body
from tests.region_kit import (
    COLOUR_LABELS,
    GREEN,
    Thing,
    build_colour_model,
    colour_manifest,
    crossing,
    write_clip,
)

pytestmark = pytest.mark.timeout(120)
API = "/api/v1"


def test_the_api_stores_filters_and_confirms_candidates(tmp_path: Path) -> None:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", public_url="http://cp.test:8000")
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        device = provision(client, admin, "park1-gate")
        plain = client.post(f"{API}/samples", json=sample_body(), headers=device).json()
        mined = client.post(f"{API}/samples", json=sample_body(candidate="background"),
                            headers=device).json()
        assert plain["candidate"] is None and mined["candidate"] == "background"
        bad = client.post(f"{API}/samples", json=sample_body(candidate="lawn"), headers=device)
        assert bad.status_code == 422 and "candidate" in bad.text

        def ids(**params: Any) -> list[int]:
            page = client.get(f"{API}/samples", params=params, headers=admin).json()
            return [s["id"] for s in page["items"]]

        assert ids(negative="true") == [mined["id"]]
        assert ids(negative="false") == [plain["id"]]
        r = client.post(f"{API}/samples/{plain['id']}/confirm", headers=admin)
        assert r.status_code == 409 and "samples label" in r.json()["detail"]
        assert client.post(f"{API}/samples/{mined['id']}/confirm",
                           headers=device).status_code == 403
        r = client.post(f"{API}/samples/{mined['id']}/confirm", json={"note": "the bins"},
                        headers=admin)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["label"]) == ("labelled", "other")
        audit = client.get(f"{API}/audit", params={"target": f"sample:{mined['id']}"},
                           headers=admin).json()["items"]
        assert [e["action"] for e in audit] == ["sample.labelled"]


@pytest.fixture
def cp_server(tmp_path: Path) -> Iterator[tuple[str, ControlPlaneSettings]]:
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", port=port,
                                    public_url=f"http://127.0.0.1:{port}")
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        yield url, settings


def colour_release(http: httpx.Client) -> str:
    """The colour model (cat, dog, other), registered and released by the control plane."""
    model = build_colour_model()
    assert http.post(f"{API}/artifacts", content=model).status_code in (200, 201)
    m = colour_manifest(model)
    reg = registration("colour", [(m.artifact.sha256, m.artifact.size_bytes, "fp32")],
                       labels=COLOUR_LABELS, input=m.input, outputs=m.outputs,
                       reference_profile=m.reference_profile, golden_inputs=m.golden_inputs,
                       background_labels=["other"], animal_min_confidence=0.6)
    r = http.post(f"{API}/models/colour/versions", content=reg.model_dump_json(by_alias=True),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = http.post(f"{API}/releases", json={"model_name": "colour",
                                           "version": r.json()["version"]})
    assert r.status_code == 201, r.text
    return str(r.json()["release_id"])


def test_mined_negatives_arrive_are_confirmed_and_exported_as_other(
        tmp_path: Path, mosquitto: Mosquitto,
        cp_server: tuple[str, ControlPlaneSettings]) -> None:
    url, settings = cp_server
    token = settings.admin_token_path.read_text().strip()
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                        timeout=10)
    release_id = colour_release(http)
    config = tomllib.loads(http.post(f"{API}/devices", json={
        "device_id": "park1-gate", "labels": {}}).json()["agent_config_toml"])
    # Three seconds of empty lawn, then a person crosses it: looped.
    person = Thing(GREEN, (20, 60), crossing(30, 60, 40, 280, 125))
    clip = write_clip(tmp_path / "lawn.avi", [person], 70)
    config.update(mqtt_url=mosquitto.url, data_dir=str(tmp_path / "agent"),
                  intra_op_threads=1, negative_max_per_hour=3600, sample_max_per_hour=1,
                  cameras=[{"camera_id": "lawn", "source": str(clip), "loop": True,
                            "sample_fps": 10.0}])
    path = tmp_path / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    observer = Observer(mosquitto.url, key=Keyring(settings.keys_dir).signing_key()[1])
    agent = Agent(load_settings(path))
    agent.start()
    try:
        observer.desire(1, release_id, settings={"upload_samples": True, "window_seconds": 1})

        def negatives() -> list[dict[str, Any]] | None:
            items = http.get(f"{API}/samples", params={"negative": "true"}).json()["items"]
            sources = {s["candidate"] for s in items}
            return items if {"rejected", "background"} <= sources else None

        items = wait_until(negatives, 60, "the person's and the lawn's crops")
    finally:
        agent.stop()
        observer.close()
    for s in items:
        assert s["camera_id"] == "lawn" and s["release_id"] == release_id
        assert s["predicted_label"] == "other" and s["status"] == "new"
        jpeg = http.get(f"{API}/artifacts/{s['image_sha256']}").content
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (32, 32, 3)  # the crop the model saw
        b, g, r = img.reshape(-1, 3).mean(axis=0)
        assert g > r and g > b  # the lawn or the person: green, no cat or dog
    http.close()

    # The operator confirms all but one, and relabels that one (it "shows a dog").
    env = {"PARKWATCH_API_URL": url, "PARKWATCH_API_TOKEN": token}
    runner = CliRunner()
    listed = runner.invoke(root_app, ["samples", "list", "--negatives", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert {s["id"] for s in json.loads(listed.output)["items"]} == {s["id"] for s in items}
    first, *rest = [s["id"] for s in items]
    done = runner.invoke(root_app, ["samples", "confirm", *map(str, rest)], env=env)
    assert done.exit_code == 0 and f"sample {rest[0]} is labelled as other" in done.output
    relabel = runner.invoke(root_app, ["samples", "label", str(first), "dog"], env=env)
    assert relabel.exit_code == 0, relabel.output

    engine = create_db_engine(settings.resolved_database_url)
    with Session(engine) as session:
        built = datasets.build_with_samples(
            session, LocalContentStore(settings.resolved_artifact_dir), name="parkwatch",
            version=datetime.now(UTC).strftime("v%H%M%S"), base_dir=None, base_version=None,
            out_root=tmp_path / "datasets", holdout_fraction=0.0, who="worker")
        provenance = built.row.detail["samples"]
        session.commit()
    engine.dispose()
    other = sorted(p.name for p in (built.folder / "other").iterdir())
    assert other == sorted(f"sample-{i}.jpg" for i in rest)
    assert [p.name for p in (built.folder / "dog").iterdir()] == [f"sample-{first}.jpg"]
    assert {provenance[str(i)]["candidate"] for i in rest} <= {"rejected", "track",
                                                                "background"}
