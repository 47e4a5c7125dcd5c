"""The trainer evaluates camera shifts from its own package, as installed: no scripts/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.agent_models import SPEC, build_model, profile

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from pathlib import Path
import trainer
from protocols import InputSpec, ReferenceProfile
from trainer.data import ImageRecord
from trainer.inference import OnnxModel
from trainer.shift_eval import shift_stage

d = Path(sys.argv[1])
records = [ImageRecord(path=p, rel_path=p.name, sha256=p.stem * 8, label="dog", label_index=1,
                       width=32, height=24, split="test") for p in sorted(d.glob("*.png"))]
spec = InputSpec.model_validate_json((d / "spec.json").read_text())
ref = ReferenceProfile.model_validate_json((d / "profile.json").read_text())
out = shift_stage(OnnxModel(d / "model.onnx"), records, spec, ref, 1.0, ["night", "dusk"], 1.0)
print(json.dumps({"package": trainer.__file__, "skipped": out.get("skipped"),
                  "shifts": sorted(out["shifts"]),
                  "night": out["shifts"].get("night", {}).get("mean_confidence"),
                  "base": out["baseline"]["mean_confidence"]}))
"""


def test_shift_stage_needs_no_scripts_folder(tmp_path: Path) -> None:
    installed = tmp_path / "site"
    for package in ("trainer", "protocols"):  # what the wheel ships (pyproject packages)
        shutil.copytree(REPO / package, installed / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # bright pictures: the tiny model says "dog", night makes it doubt
        img = np.clip(rng.normal(200, 20, (24, 32, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(data / f"{i:04d}.png"), img)
    (data / "model.onnx").write_bytes(build_model())
    (data / "profile.json").write_text(profile().model_dump_json())
    (data / "spec.json").write_text(SPEC.model_dump_json())
    done = subprocess.run([sys.executable, "-c", CHILD, str(data)], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(installed)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(installed))
    assert out["skipped"] is None and out["shifts"] == ["dusk", "night"]
    assert out["night"] < out["base"]
