"""Quality gates on the way to production, through the CLI against a real uvicorn: a
version carries its evaluation, a weak one is refused, an override needs a reason and is
audited, two versions compare side by side, and `releases create` signs the champion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings, ReleaseGateSettings
from control_plane.testing import registration
from parkwatch_cli import app as root_app
from tests.conftest import free_port, serving

GOOD = {"test_accuracy": 0.93, "test_macro_f1": 0.91, "quality_gate_passed": 1.0}
WEAK = {"test_accuracy": 0.0, "test_macro_f1": 0.0, "quality_gate_passed": 0.0,
        "weak_model_allowed": 1.0}
LOW = {"test_accuracy": 0.71, "test_macro_f1": 0.70, "quality_gate_passed": 1.0}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    port, data_dir = free_port(), tmp_path / "data"
    settings = ControlPlaneSettings(
        data_dir=data_dir, port=port,
        release_gate=ReleaseGateSettings(models={"petnet": {"test_accuracy": 0.8}}))
    monkeypatch.delenv("PARKWATCH_API_TOKEN", raising=False)
    monkeypatch.delenv("PARKWATCH_CONFIG", raising=False)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        token = (data_dir / "admin.token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            for i, metrics in enumerate((GOOD, WEAK, LOW)):
                body = f"onnx-{i}".encode()
                sha = http.post("/api/v1/artifacts", content=body).json()["sha256"]
                spec = registration("petnet", [(sha, len(body), "int8")], metrics=metrics)
                assert http.post("/api/v1/models/petnet/versions",
                                 json=spec.model_dump(mode="json")).status_code == 201
        yield {"PARKWATCH_API_URL": url, "PARKWATCH_DATA_DIR": str(data_dir)}


def cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(root_app, args, env=env)
    return result.exit_code, result.output


def test_release_gate_override_and_champion(env: dict[str, str]) -> None:
    code, text = cli(["releases", "create", "petnet", "--version", "2"], env)
    assert code == 1 and text.count("\n") == 1, text
    assert "petnet v2 fails the release gate" in text and "--allow-weak-model" in text
    assert "test_accuracy 0 < 0.8" in text and "--override-gate --reason" in text
    code, text = cli(["releases", "create", "petnet", "--version", "3"], env)
    assert code == 1 and "test_accuracy 0.71 < 0.8" in text

    code, text = cli(["releases", "create", "petnet", "--version", "2", "--override-gate"], env)
    assert code == 1 and "go together" in text
    code, text = cli(["releases", "create", "petnet", "--version", "2", "--override-gate",
                      "--reason", "ok"], env)
    assert code == 1 and "reason of at least" in text
    reason = "field test of the pipeline on one camera"
    code, text = cli(["releases", "create", "petnet", "--version", "2", "--override-gate",
                      "--reason", reason], env)
    assert code == 0 and "overridden" in text, text
    code, text = cli(["audit", "list", "--json"], env)
    entries = [e for e in json.loads(text)["items"] if e["action"] == "release.gate_override"]
    assert len(entries) == 1 and entries[0]["detail"]["reason"] == reason
    assert entries[0]["detail"]["version"] == "2"

    # No version named: the champion, not the latest (3 is the latest and fails the gate).
    assert cli(["aliases", "set", "petnet", "champion", "1"], env)[0] == 0
    code, text = cli(["releases", "create", "petnet", "--json"], env)
    assert code == 0 and json.loads(text)["model_version"] == "1", text


def test_versions_compare_side_by_side(env: dict[str, str]) -> None:
    assert cli(["aliases", "set", "petnet", "champion", "1"], env)[0] == 0
    code, text = cli(["versions", "compare", "petnet", "champion", "3", "--json"], env)
    assert code == 0, text
    cmp = json.loads(text)
    assert cmp["a"]["version"] == "1" and cmp["b"]["version"] == "3"
    assert cmp["a"]["gate"] == "passes" and cmp["b"]["gate"] == "test_accuracy 0.71 < 0.8"
    delta = {m["metric"]: m["delta"] for m in cmp["metrics"]}
    assert delta["test_accuracy"] == pytest.approx(0.71 - 0.93)
    code, text = cli(["versions", "compare", "petnet", "1", "2"], env)
    assert code == 0 and "test_macro_f1" in text and "v2" in text
    code, text = cli(["versions", "compare", "petnet", "1", "9"], env)
    assert code == 1 and "no version or alias '9'" in text
