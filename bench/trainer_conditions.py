"""Regions models' crop accuracy per camera condition, side by side on the same crops.

    python bench/trainer_conditions.py --models out/base out/mix4 [--seconds 60] [--seed 0]

Each model (a trainer out dir of ``parkwatch train --regions``) classifies, with its
primary artifact, the crops ``trainer.region_eval.clip_crops`` cuts at the true boxes of
park clips filmed from the **test** photos' cut-outs (the split comes from the models'
report.json, which must agree): ``--seconds`` of clip per scene condition (day, dusk,
night, IR, rain), one sampled frame a second, and the day frames' animals again with the
whole frame motion-blurred or JPEG-compressed as ``bench/region_accuracy.py`` does. It
prints cat-vs-dog accuracy per condition with 95 % intervals (Clopper-Pearson) and each
condition's gap to day in points, then accuracy by animal width, one column per model,
and the load average at the start and the end. Crops are made once and shared, so the
models see the same pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _track_score import share_interval  # bench/ is on sys.path: scripts run from it

from protocols import CropSpec, ModelVersionCreate
from trainer.inference import OnnxModel
from trainer.region_eval import CONDITIONS, ClipCrops, clip_crops, clip_report, predict_crops

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"
SPLIT_KEYS = ("seed", "val_fraction", "test_fraction", "input_size")


def load(model_dir: Path) -> tuple[OnnxModel, ModelVersionCreate, dict[str, object]]:
    reg = ModelVersionCreate.model_validate_json((model_dir / "registration.json").read_text())
    settings = json.loads((model_dir / "report.json").read_text())["settings"]
    primary = {a.sha256: a for a in reg.artifacts}[reg.primary_sha256]
    name = "model.int8.onnx" if primary.precision == "int8" else "model.onnx"
    return OnnxModel(model_dir / name), reg, settings


def _cell(row: dict[str, float] | None) -> str:
    if not row:
        return "-"
    n = int(row["samples"])
    k = round(row["accuracy"] * n)
    low, high = share_interval(k, n)
    gap = row.get("vs_day_points")
    return (f"{row['accuracy']:.1%} [{low:.0%}, {high:.0%}] of {n}"
            + ("" if gap is None else f", {gap:+.1f}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, nargs="+", required=True,
                    help="trainer out dirs (registration.json, report.json, model files)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="seconds of clip per scene condition")
    ap.add_argument("--seed", type=int, default=0, help="the clips' seed")
    a = ap.parse_args(argv)
    try:
        models = [load(m) for m in a.models]
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}; pass --models with trainer out dirs of regions runs",
              file=sys.stderr)
        return 2
    splits = {tuple(s[k] for k in SPLIT_KEYS) for _, _, s in models}
    if len(splits) != 1:
        print(f"error: the models' {', '.join(SPLIT_KEYS)} differ ({sorted(splits)}): "
              "compare models of one split and input size", file=sys.stderr)
        return 2
    _, reg, settings = models[0]
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    crops: ClipCrops = clip_crops(a.data, reg.input, CropSpec(), a.seconds, a.seed,
                                  float(settings["val_fraction"]),  # type: ignore[arg-type]
                                  float(settings["test_fraction"]))  # type: ignore[arg-type]
    made = time.perf_counter() - started
    reports = []
    for model, reg_m, _ in models:
        logits = predict_crops(model, crops.images, reg_m.input)
        background = list(reg_m.background_labels or [])
        reports.append(clip_report(crops, logits, reg_m.labels, background, 1.0,
                                   reg_m.animal_min_confidence or 0.0))
    names = " | ".join(str(m) for m in a.models)
    print(f"{len(crops.images)} crops of {a.seconds:g} s per condition (seed {a.seed}), made "
          f"in {made:.0f} s; load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print(f"| condition: cat vs dog right [95 %] of crops, vs day (points) | {names} |")
    print("|---|" + "---:|" * len(models))
    for c in CONDITIONS:
        print(f"| {c} | " + " | ".join(_cell(r["by_condition"].get(c)) for r in reports) + " |")
    worst = [min((r["by_condition"][c].get("vs_day_points", 0.0)
                  for c in CONDITIONS if c in r["by_condition"] and c != "day"), default=0.0)
             for r in reports]
    print("| worst gap to day, points | " + " | ".join(f"{w:+.1f}" for w in worst) + " |")
    print("| all camera frames | " + " | ".join(f"{r['accuracy']:.1%} of {r['animal_crops']}"
                                                for r in reports) + " |")
    print("| non-animal crops counted as an animal | "
          + " | ".join(f"{r['false_animal_rate']:.1%} of {r['other_crops']}" for r in reports)
          + " |")
    print(f"\n| width (share of the frame) | {names} |")
    print("|---|" + "---:|" * len(models))
    for bucket in sorted({b for r in reports for b in r["by_width"]}):
        print(f"| {bucket} | " + " | ".join(_cell(r["by_width"].get(bucket)) for r in reports)
              + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
