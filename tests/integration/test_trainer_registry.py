"""Registration over real HTTP against a small stand-in control plane (stdlib http.server).

The stand-in speaks the two calls of docs/contracts.md and validates what it
receives with the protocols models; the real control plane is tested elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols import ModelVersionCreate
from scripts.synth_images import generate_dataset
from tests.conftest import http_server
from trainer import RegistryError, TrainerError, TrainingResult, load_settings, run_training
from trainer.pipeline import resolve_token
from trainer.registry_client import RegistryClient

TOKEN = "test-operate-token"
JOB_ID = "job-7"


class JobUpdateBody(BaseModel):
    """Mirror of control_plane.schemas.JobUpdate (the trainer must not import it)."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(queued|running|succeeded|failed|cancelled)$")
    progress: float | None = Field(None, ge=0.0, le=1.0)
    stage: str | None = Field(None, max_length=64)
    message: str | None = Field(None, max_length=1024)
    result_version: str | None = Field(None, min_length=1, max_length=32)


@dataclass
class FakeControlPlane:
    url: str = ""
    artifacts: dict[str, bytes] = field(default_factory=dict)
    versions: list[ModelVersionCreate] = field(default_factory=list)
    reject_versions: str | None = None  # answer 422 with this detail
    job_updates: list[JobUpdateBody] = field(default_factory=list)
    run_updates: list[JobUpdateBody] = field(default_factory=list)  # the `registered` run's


def _handler(state: FakeControlPlane) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, code: int, body: dict[str, object]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"detail": "invalid or missing token"})
            if self.path == "/api/v1/artifacts":
                sha = hashlib.sha256(body).hexdigest()
                if self.headers.get("X-Content-Sha256") not in (None, sha):
                    return self._answer(400, {"detail": "X-Content-Sha256 does not match"})
                state.artifacts[sha] = body
                return self._answer(201, {"sha256": sha, "size_bytes": len(body)})
            match = re.fullmatch(r"/api/v1/models/([A-Za-z0-9._-]+)/versions", self.path)
            if match:
                if state.reject_versions:
                    return self._answer(422, {"detail": state.reject_versions})
                try:  # as the real API: the token first, then the body (the pre-flight probe)
                    reg = ModelVersionCreate.model_validate_json(body)
                except ValidationError as exc:
                    return self._answer(422, {"detail": str(exc)[:300]})
                missing = [a.sha256 for a in reg.artifacts if a.sha256 not in state.artifacts]
                if missing or match[1] != reg.model_name:
                    return self._answer(422, {"detail": f"unknown artifacts {missing}"})
                state.versions.append(reg)
                return self._answer(201, {"model_name": reg.model_name,
                                          "version": str(len(state.versions))})
            return self._answer(404, {"detail": "not found"})

        def do_GET(self) -> None:
            if self.path == "/healthz":
                return self._answer(200, {"status": "ok"})
            return self._answer(404, {"detail": "not found"})

        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"detail": "invalid or missing token"})
            if self.path != f"/api/v1/jobs/{JOB_ID}":
                return self._answer(404, {"detail": f"no job at {self.path}"})
            try:
                update = JobUpdateBody.model_validate_json(body)
            except ValidationError as exc:
                return self._answer(422, {"detail": str(exc)})
            state.job_updates.append(update)
            return self._answer(200, {"job_id": JOB_ID, "status": update.status or "running"})

    return Handler


@pytest.fixture(scope="module")
def control_plane() -> Iterator[FakeControlPlane]:
    state = FakeControlPlane()
    with http_server(_handler(state)) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state


@pytest.fixture(scope="module")
def registered(
    control_plane: FakeControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> TrainingResult:
    root = tmp_path_factory.mktemp("registered")
    generate_dataset(root / "data", n_per_class=16, seed=2, size=48)
    settings = load_settings(
        None, data_dir=root / "data", out_dir=root / "out", input_size=32, width_mult=0.35,
        epochs=1, batch_size=16, val_fraction=0.25, test_fraction=0.25, device="cpu",
        api_url=control_plane.url, api_token=TOKEN, parent_version="3", job_id=JOB_ID,
        allow_weak_model=True,  # one epoch on 32 images: registration is what this tests
    )
    start = len(control_plane.job_updates)
    result = run_training(settings, show_progress=False)
    control_plane.run_updates = control_plane.job_updates[start:]
    return result


@pytest.mark.slow
def test_run_training_uploads_artifacts_and_registers(
    registered: TrainingResult, control_plane: FakeControlPlane
) -> None:
    assert registered.registered_version == "1"
    reg = control_plane.versions[0]
    assert reg == registered.registration
    assert reg.lineage.parent_version == "3"
    # One epoch, 4 test images: the gate fails and the override is on the record.
    assert reg.metrics["quality_gate_passed"] == 0.0 and reg.metrics["weak_model_allowed"] == 1.0
    assert registered.primary_path is not None
    assert control_plane.artifacts[reg.primary_sha256] == registered.primary_path.read_bytes()
    assert {a.precision for a in reg.artifacts} == {"fp32", "int8"}
    assert registered.int8_path is not None
    for path in (registered.model_path, registered.int8_path):  # both artifacts uploaded
        assert hashlib.sha256(path.read_bytes()).hexdigest() in control_plane.artifacts
    assert reg.report_sha256 is not None
    assert control_plane.artifacts[reg.report_sha256] == registered.report_path.read_bytes()
    answer = json.loads((registered.out_dir / "registered.json").read_text())
    assert answer["version"] == "1"


@pytest.mark.slow
def test_job_mode_reports_running_progress_and_success(
    registered: TrainingResult, control_plane: FakeControlPlane
) -> None:
    updates = control_plane.run_updates
    assert updates[0].status == "running" and updates[0].progress == 0.0
    assert updates[-1].status == "succeeded"
    assert updates[-1].result_version == registered.registered_version == "1"
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert {"train", "export", "quantize", "evaluate"} <= {u.stage for u in updates}


def test_an_unknown_job_fails_before_training(
    control_plane: FakeControlPlane, tmp_path: Path
) -> None:
    settings = load_settings(
        None, data_dir=tmp_path / "nowhere", out_dir=tmp_path / "out",
        api_url=control_plane.url, api_token=TOKEN, job_id="no-such-job",
    )
    with pytest.raises(RegistryError, match="no-such-job"):
        run_training(settings, show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_failing_run_reports_failed_with_the_reason(
    control_plane: FakeControlPlane, tmp_path: Path
) -> None:
    start = len(control_plane.job_updates)
    settings = load_settings(
        None, data_dir=tmp_path / "nowhere", out_dir=tmp_path / "out",
        api_url=control_plane.url, api_token=TOKEN, job_id=JOB_ID,
    )
    with pytest.raises(TrainerError, match="does not exist"):
        run_training(settings, show_progress=False)
    updates = control_plane.job_updates[start:]
    assert [u.status for u in updates] == ["running", "failed"]
    assert updates[-1].message is not None and "does not exist" in updates[-1].message


@pytest.mark.slow
def test_a_refused_version_names_the_servers_reason(
    registered: TrainingResult, control_plane: FakeControlPlane
) -> None:
    control_plane.reject_versions = "labels differ from the previous version"
    try:
        with (
            RegistryClient(control_plane.url, TOKEN) as client,
            pytest.raises(RegistryError, match="labels differ from the previous version"),
        ):
            client.register_version(registered.registration)
    finally:
        control_plane.reject_versions = None


def test_a_wrong_token_says_which_token_to_use(control_plane: FakeControlPlane) -> None:
    with (
        RegistryClient(control_plane.url, "nope") as client,
        pytest.raises(RegistryError, match="refused the token") as err,
    ):
        client.upload_artifact(b"model bytes")
    assert "PARKWATCH_API_TOKEN" in str(err.value)


def test_upload_is_checked_by_content_hash(control_plane: FakeControlPlane) -> None:
    with RegistryClient(control_plane.url, TOKEN) as client:
        sha = client.upload_artifact(b"some model")
    assert sha == hashlib.sha256(b"some model").hexdigest()
    assert control_plane.artifacts[sha] == b"some model"


def test_an_unreachable_control_plane_names_the_url_and_the_fix() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with (
        RegistryClient(url, TOKEN) as client,
        pytest.raises(RegistryError, match="parkwatch serve") as err,
    ):
        client.upload_artifact(b"x")
    assert url in str(err.value)


def test_no_token_is_a_clear_error_and_the_env_token_is_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PARKWATCH_API_TOKEN", raising=False)
    with pytest.raises(RegistryError, match="--token"):
        RegistryClient("http://127.0.0.1:1", None)
    settings = load_settings(None, data_dir=tmp_path, api_url="http://cp:8000")
    assert resolve_token(settings) is None
    monkeypatch.setenv("PARKWATCH_API_TOKEN", "from-env")
    assert resolve_token(settings) == "from-env"
    assert resolve_token(settings.model_copy(update={"api_token": "explicit"})) == "explicit"
