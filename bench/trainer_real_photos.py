"""Real photos: pretrained EfficientNet-Lite0 vs from-scratch PetNet on the same split.

Runs the whole trainer pipeline (``trainer.run_training``: scan, split by file hash,
train, export, parity, int8 gate, calibration, evaluation, profile, shifted test
images) once per network on the real cat/dog photos, one after the other in one
process, and prints a markdown table: test accuracy, training and total wall time,
fp32 vs int8 accuracy, latency and size ratios, and accuracy per camera shift.

    python bench/trainer_real_photos.py [--data ../shared/data/cats_and_dogs]
        [--archs lite0,compact] [--finetune none] [--out /tmp/real-photos]

Figures are for this machine only; compare the rows with each other, not with
another machine's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console

from trainer import load_settings, run_training

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"


def run_one(arch: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    overrides: dict[str, Any] = {"arch": arch}
    if arch == "lite0":
        overrides["finetune"] = args.finetune
    settings = load_settings(
        None, data_dir=args.data, out_dir=args.out / arch, seed=args.seed,
        quantize=not args.no_quantize, **overrides,
    )
    t0 = time.perf_counter()
    result = run_training(settings, console=console, show_progress=args.progress)
    wall = time.perf_counter() - t0
    report = json.loads(result.report_path.read_text())
    shifts = report["evaluation"].get("shifts") or {}
    return {
        "arch": arch,
        "input_size": settings.input_size,
        "finetune": settings.finetune if arch == "lite0" else "-",
        "test_accuracy": result.metrics["test_accuracy"],
        "val_accuracy": result.metrics["val_accuracy"],
        "test_samples": report["evaluation"]["test"]["samples"],
        "train_s": report["training"]["seconds"],
        "total_s": wall,
        "timings_s": report["timings_s"],
        "gate": result.gate,
        "primary": "int8" if result.int8_primary else "fp32",
        "shift_accuracy": {k: v["accuracy"] for k, v in shifts.get("shifts", {}).items()},
        "shift_psi_embedding_max": {
            "none": shifts.get("baseline", {}).get("psi_embedding_max"),
            **{k: v["psi_embedding_max"] for k, v in shifts.get("shifts", {}).items()},
        },
        "dataset_version": result.dataset_version,
    }


def table(rows: list[dict[str, Any]]) -> str:
    shifts = sorted({s for r in rows for s in r["shift_accuracy"]})
    head = ["arch", "input", "finetune", "test acc", "train s", "total s", "int8 acc",
            "int8/fp32 latency", "int8/fp32 size", "primary", *[f"acc {s}" for s in shifts]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        g = r["gate"] or {}
        cells = [
            r["arch"], str(r["input_size"]), r["finetune"], f"{r['test_accuracy']:.4f}",
            f"{r['train_s']:.0f}", f"{r['total_s']:.0f}",
            f"{g['int8_accuracy']:.4f}" if g else "-",
            f"{g['latency_ratio']:.2f}" if g else "-", f"{g['size_ratio']:.2f}" if g else "-",
            r["primary"], *[f"{r['shift_accuracy'].get(s, float('nan')):.4f}" for s in shifts],
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--archs", default="lite0,compact")
    parser.add_argument("--finetune", default="none",
                        choices=["none", "head", "last_blocks", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/parkwatch-real-photos"))
    parser.add_argument("--no-quantize", action="store_true")
    parser.add_argument("--progress", action="store_true", help="Show the trainer's bars.")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: no photos at {args.data}; pass --data", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    rows = [run_one(arch, args, console) for arch in args.archs.split(",")]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python "
          f"{platform.python_version()}; data {args.data} (version "
          f"{rows[0]['dataset_version'][:12]}, test split {rows[0]['test_samples']} photos)")
    print(table(rows))
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    print(f"details: {args.out / 'summary.json'} and each arch's report.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
