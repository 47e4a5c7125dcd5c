"""``parkwatch train`` / ``parkwatch register`` off the happy path, against a real control
plane (uvicorn, SQLite) and real photos, each command a real process as a user runs it.

Every bad input must end in one line naming the fix, before any training; the time to
that line is printed (``-s``), never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from tests.conftest import REPO_ROOT, free_port, serving
from tests.sources_kit import image_folder


@dataclass(frozen=True)
class ControlPlane:
    url: str
    operate: str
    read: str

    def versions(self, model: str = "petnet") -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/api/v1/versions", params={"model": model},
                           headers={"Authorization": f"Bearer {self.read}"}, timeout=10)
        return list(answer.json()["items"])


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path_factory.mktemp("cp"), port=port)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        tokens = {
            scope: httpx.post(f"{url}/api/v1/tokens", json={"name": scope, "scopes": [scope]},
                              headers=admin, timeout=10).json()["token"]
            for scope in ("operate", "read")
        }
        yield ControlPlane(url, tokens["operate"], tokens["read"])


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_folder(tmp_path_factory.mktemp("photos") / "data", per_class=25)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    seconds: float

    def error_lines(self) -> list[str]:
        """stderr without warnings and without the stage lines of a run that started."""
        return [line for line in self.err.splitlines()
                if line.strip() and not line.startswith("WARNING") and "] " not in line[:12]]


def parkwatch(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Ran:
    """``parkwatch ARGS`` in a fresh process, with no PARKWATCH_* from the test's environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "parkwatch_cli", *args], cwd=REPO_ROOT,
                          env={**clean, "COLUMNS": "400", **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return Ran(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


def _bad_inputs(root: Path, photos: Path, cp: ControlPlane) -> list[tuple[str, list[str],
                                                                          dict[str, str], str]]:
    (root / "empty").mkdir()
    tiny = image_folder(root / "tiny", per_class=2)
    (root / "a-file").write_text("")
    out = ["--out", str(root / "out")]
    data = ["--data", str(photos), *out]
    closed = f"http://127.0.0.1:{free_port()}"
    return [
        ("missing data folder", ["--data", str(root / "nope"), *out], {}, "does not exist"),
        ("empty data folder", ["--data", str(root / "empty"), *out], {}, "not an ImageFolder"),
        ("images not in label folders", ["--data", str(tiny / "cat"), *out], {},
         "lie directly in it"),
        ("2 images per class", ["--data", str(tiny), *out], {}, "cat 2, dog 2 image(s); each "
         "label needs at least 20"),
        ("unwritable --out", ["--data", str(photos), "--out", str(root / "a-file" / "o")], {},
         "cannot write to the output folder"),
        ("API URL without http://", [*data, "--api-url", "localhost:8000"], {},
         "is not an http(s) URL"),
        ("unreachable API URL", [*data, "--api-url", closed, "--token", cp.operate], {},
         "cannot reach the control plane"),
        ("no token", [*data, "--api-url", cp.url], {}, "no API token"),
        ("wrong token", [*data, "--api-url", cp.url, "--token", "pw_wrong"], {},
         "refused the token (401"),
        ("token without the operate scope", [*data, "--api-url", cp.url], {
            "PARKWATCH_API_TOKEN": cp.read}, "needs 'operate'"),
        ("PARKWATCH_API_URL set, wrong token", data,
         {"PARKWATCH_API_URL": cp.url, "PARKWATCH_API_TOKEN": "pw_wrong"}, "refused the token"),
        ("deprecated PARKWATCH_TRAINER_API_URL, unreachable", [*data, "--token", "t"],
         {"PARKWATCH_TRAINER_API_URL": closed}, "cannot reach the control plane"),
    ]


@pytest.mark.slow
def test_every_bad_input_is_one_line_before_training(
    cp: ControlPlane, photos: Path, tmp_path: Path
) -> None:
    table = []
    for what, args, env, expected in _bad_inputs(tmp_path, photos, cp):
        ran = parkwatch("train", *args, env=env)
        lines = ran.error_lines()
        table.append(f"| {what} | {lines[0] if lines else ran.err!r} | {ran.seconds:.2f} s |")
        assert ran.code == 1, (what, ran.err)
        assert len(lines) == 1 and expected in lines[0], (what, ran.err)
        assert "Traceback" not in ran.err + ran.out, what
        assert not (tmp_path / "out" / "model.onnx").exists(), what  # nothing was trained
        if "TRAINER" in what:
            assert "PARKWATCH_TRAINER_API_URL is deprecated" in ran.err
    print("\n| bad input | message | time |\n|---|---|---|\n" + "\n".join(table))
    assert cp.versions() == []


def _noise_folder(root: Path, per_class: int = 25) -> Path:
    """Two labels of the same grey picture (one pixel differs): nothing to learn."""
    import cv2

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            img = np.full((40, 40, 3), 128, np.uint8)
            img[0, 0] = rng.integers(0, 256, 3)
            cv2.imwrite(str(root / label / f"{label}_{i}.png"), img)
    return root


FAST = ["--input-size", "32", "--width-mult", "0.35", "--epochs", "1", "--no-quantize",
        "--device", "cpu", "--quiet"]


@pytest.mark.slow
def test_a_useless_model_is_refused_and_never_reaches_the_registry(
    cp: ControlPlane, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ran = parkwatch("train", "--data", str(_noise_folder(tmp_path / "data")), "--out", str(out),
                    *FAST, env={"PARKWATCH_API_URL": cp.url, "PARKWATCH_API_TOKEN": cp.operate})
    assert ran.code == 1, ran.err
    assert "error: model refused" in ran.err and "--allow-weak-model" in ran.err
    assert "Traceback" not in ran.err
    assert not (out / "registration.json").exists() and (out / "report.md").exists()
    quality = json.loads((out / "report.json").read_text())["evaluation"]["quality"]
    assert not quality["passed"] and quality["reasons"]
    assert cp.versions() == []
    later = parkwatch("register", str(out), env={"PARKWATCH_API_URL": cp.url,
                                                 "PARKWATCH_API_TOKEN": cp.operate})
    assert later.code == 1 and "quality gate refused" in later.err


@pytest.mark.slow
def test_register_later_from_the_output_folder_idempotently(
    cp: ControlPlane, photos: Path, tmp_path: Path
) -> None:
    env = {"PARKWATCH_API_URL": cp.url, "PARKWATCH_API_TOKEN": cp.operate}
    # Run A registers as it trains (URL and token from the operator CLI's variables).
    run_a = parkwatch("train", "--data", str(photos), "--out", str(tmp_path / "a"), *FAST,
                      "--model-name", "later", "--allow-weak-model", env=env)
    assert run_a.code == 0, run_a.err
    assert [v["version"] for v in cp.versions("later")] == ["1"]
    again = parkwatch("register", str(tmp_path / "a"), env=env)
    assert again.code == 0 and "already registered as later version 1" in again.out, again.err
    # Run B trains offline; registering its folder later makes version 2, once.
    run_b = parkwatch("train", "--data", str(photos), "--out", str(tmp_path / "b"), *FAST,
                      "--model-name", "later", "--allow-weak-model", "--seed", "1")
    assert run_b.code == 0 and "parkwatch register OUT_DIR" in run_b.out, run_b.err
    first = parkwatch("register", str(tmp_path / "b"), "--api-url", cp.url, "--token", cp.operate)
    assert first.code == 0 and "registered later version 2" in first.out, first.err
    second = parkwatch("register", str(tmp_path / "b"), env=env)
    assert second.code == 0 and "already registered as later version 2" in second.out
    versions = cp.versions("later")
    assert [v["version"] for v in versions] == ["2", "1"]
    assert all("quality_gate_passed" in v["metrics"] for v in versions)  # type: ignore[operator]
    # A folder changed since training is refused, naming what changed.
    (tmp_path / "b" / "report.json").write_text("{}")
    changed = parkwatch("register", str(tmp_path / "b"), env=env)
    assert changed.code == 1 and "missing or changed since training" in changed.err
    wrong = parkwatch("register", str(tmp_path / "a"), "--api-url", cp.url, "--token", cp.read)
    assert wrong.code == 1 and "needs 'operate'" in wrong.err
    nothing = parkwatch("register", str(tmp_path), env=env)
    assert nothing.code == 1 and "has no registration.json" in nothing.err


def test_a_url_that_is_not_a_control_plane_says_so(tmp_path: Path) -> None:
    from tests.sources_kit import file_server
    from trainer import RegistryError
    from trainer.registry_client import RegistryClient

    with file_server() as other, RegistryClient(other.url, "pw_any") as client:
        with pytest.raises(RegistryError, match="answers, but not as a parkwatch control plane"):
            client.check_can_register("petnet")
        assert other.requests == [("/healthz", None, 404)]  # nothing was posted
