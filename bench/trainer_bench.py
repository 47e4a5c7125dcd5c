"""Trainer benchmark: training throughput, fp32 vs int8 accuracy / latency / size, as ratios.

Runs the real pipeline (``run_training``, default settings unless overridden) on a
synthetic set, then times fp32 and int8 side by side for a few batch sizes and
thread counts, and prints one markdown table with the machine it ran on.

    python bench/trainer_bench.py                       # 400/class synthetic, defaults
    python bench/trainer_bench.py --data DIR --epochs 5 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import onnxruntime as ort
import torch
from _machine import cpu_name  # bench/ is on sys.path: scripts run from it

from scripts.synth_images import generate_dataset
from trainer import load_settings, run_training
from trainer.quantize import compare_latency


def machine() -> str:
    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} logical CPUs (load {load}), GPU {gpu}; torch "
            f"{torch.__version__}, onnxruntime {ort.__version__}, Python "
            f"{platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="ImageFolder (default: synthetic)")
    ap.add_argument("--n-per-class", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    data = a.data
    if data is None:
        data = work / "data"
        generate_dataset(data, n_per_class=a.n_per_class, seed=1, size=128)
    settings = load_settings(  # a speed benchmark: a short run's weak model is kept
        None, data_dir=data, out_dir=a.out or work / "out", epochs=a.epochs, device=a.device,
        allow_weak_model=True,
    )
    started = time.perf_counter()
    result = run_training(settings, show_progress=False)
    wall = time.perf_counter() - started
    report = json.loads(result.report_path.read_text())
    gate = report["quantization"]
    training = report["training"]
    assert result.int8_path is not None
    x = np.zeros((32, 3, settings.input_size, settings.input_size), np.float32)
    rows = []
    for batch, threads in ((1, 1), (1, 2), (32, 1), (32, 2)):
        fp32_ms, int8_ms = compare_latency(
            result.model_path, result.int8_path, x[:batch], threads=threads, rounds=9
        )
        rows.append((batch, threads, fp32_ms, int8_ms))
    print(f"\nMachine: {machine()}\n")
    print(f"Data: {data} ({report['dataset']['images']} images), settings "
          f"arch={settings.arch} width={settings.width_mult} input={settings.input_size} "
          f"epochs run={training['epochs_run']} device={training['device']}\n")
    print("| figure | fp32 | int8 | int8 / fp32 |")
    print("|---|---:|---:|---:|")
    print(f"| test accuracy | {gate['fp32_accuracy']:.4f} | {gate['int8_accuracy']:.4f} | "
          f"{gate['int8_accuracy'] / max(gate['fp32_accuracy'], 1e-9):.3f} "
          f"(drop {gate['accuracy_drop_points']:+.2f} points) |")
    print(f"| model size (bytes) | {gate['fp32_size_bytes']} | {gate['int8_size_bytes']} | "
          f"{gate['size_ratio']:.2f} |")
    for batch, threads, fp32_ms, int8_ms in rows:
        print(f"| latency, batch {batch}, {threads} thread(s) (ms) | {fp32_ms:.3f} | "
              f"{int8_ms:.3f} | {int8_ms / fp32_ms:.2f} |")
    print(f"\nTraining: {training['images_per_s']:.0f} images/s "
          f"({training['epochs_run']} epochs, {training['seconds']:.1f} s; decode + augment + "
          f"forward + backward); whole run {wall:.1f} s. Gate verdict: "
          f"{'int8' if gate['ship_int8'] else 'fp32'} primary.")
    if a.json:
        print(json.dumps({"gate": gate, "latency": rows, "train_images_per_s":
                          training["images_per_s"], "wall_s": wall}, indent=2))


if __name__ == "__main__":
    main()
