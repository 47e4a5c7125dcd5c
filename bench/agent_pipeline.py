"""Benchmark: the edge agent's per-frame pipeline vs bare ONNX Runtime vs eager torch.

    python bench/agent_pipeline.py [--threads N] [--seconds S] [--rounds R]

Not a test. Builds the trainer's network (``trainer.model.PetNet``, default trainer
config: 96 px input, width 0.5), exports it with ``trainer.export.export_onnx``, then
measures in one run, interleaved round by round (so a busy neighbour hurts all three
alike), on the same pre-resized decoded frames (model input size, BGR uint8):

* **pipeline** - what the agent does per frame: ``ModelRuntime.infer`` (resize +
  colour + normalise + layout into reused buffers, ORT ``run_with_iobinding``,
  finite check, softmax) then ``WindowAccumulator.add`` (class counts, confidence,
  input statistics, embedding projection histograms, latency reservoirs);
* **bare ORT** - ``session.run`` on the already preprocessed float32 tensor, same
  model file, same session options and threads;
* **torch eager** - ``PetNet`` in ``torch.inference_mode()``, same threads, same tensor.

A second pipeline row feeds 640x480 camera frames (the resize is then part of the
work) for information. Prints a markdown table; the goal is pipeline/bare >= 0.85.
Imports torch and the trainer: the bench is not a component, the agent never does.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _machine import cpu_name  # bench/ is on sys.path: scripts run from it

from edge_agent.config import _default_threads
from edge_agent.runtime import ModelRuntime
from edge_agent.telemetry import WindowAccumulator
from protocols import (
    ArtifactRef,
    GoldenInput,
    Histogram,
    InputSpec,
    OutputSpec,
    ReferenceProfile,
    ReleaseManifest,
)
from protocols.manifest import INPUT_STAT_NAMES
from trainer.config import TrainerSettings
from trainer.export import export_onnx
from trainer.lite0 import Lite0
from trainer.model import PetNet

LABELS = ["cat", "dog", "empty"]


def manifest_for(path: Path, size: int, embedding_dim: int) -> ReleaseManifest:
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(4, embedding_dim))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)

    def hist(lo: float, hi: float, bins: int = 20) -> Histogram:
        return Histogram(edges=list(np.linspace(lo, hi, bins + 1)), counts=[1.0] * bins)

    import hashlib

    data = path.read_bytes()
    return ReleaseManifest(
        release_id="bench", model_name="petnet", model_version="1", labels=LABELS,
        input=InputSpec(width=size, height=size), outputs=OutputSpec(embedding_dim=embedding_dim),
        artifact=ArtifactRef(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)),
        reference_profile=ReferenceProfile(
            sample_count=1000, class_counts={lb: 1.0 for lb in LABELS},
            confidence=hist(0, 1), input_stats={n: hist(0, 255) for n in INPUT_STAT_NAMES},
            embedding_mean=[0.0] * embedding_dim, embedding_axes=axes.tolist(),
            embedding_hists=[hist(-10, 10) for _ in range(4)]),
        golden_inputs=[GoldenInput(name="unused", image_png_b64="iVBORw0KGgo=",
                                   expected_logits=[0.0] * len(LABELS))],  # not smoke-tested here
    )


def throughput(step: Callable[[int], object], seconds: float, n_inputs: int) -> float:
    """Frames per second of ``step(i)`` over about ``seconds`` (after a short warm-up)."""
    for i in range(5):
        step(i % n_inputs)
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(10):
            step(count % n_inputs)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=_default_threads(),
                    help="intra-op threads for all three (default: the agent's default)")
    ap.add_argument("--seconds", type=float, default=1.0, help="per variant per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--arch", choices=["default", "lite0"], default="default",
                    help="default: the trainer's default PetNet; lite0: EfficientNet-Lite0 at "
                    "224 px (random weights: throughput does not depend on them)")
    args = ap.parse_args()
    threads = args.threads

    torch.set_num_threads(threads)
    defaults = TrainerSettings.model_fields  # the trainer's default model config
    size: int = defaults["input_size"].default
    width: float = defaults["width_mult"].default
    net: PetNet | Lite0
    if args.arch == "lite0":
        size, width = 224, 1.0
        net = Lite0(num_classes=len(LABELS), input_size=size).eval()
    else:
        net = PetNet(num_classes=len(LABELS), width_mult=width, input_size=size).eval()
    model_name = "EfficientNet-Lite0" if args.arch == "lite0" else "trainer PetNet"
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    path = export_onnx(net, tmp / "model.onnx", size)
    manifest = manifest_for(path, size, net.embedding_dim)

    rng = np.random.default_rng(1)
    n = 32
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    camera = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]

    runtime = ModelRuntime(path, manifest, threads)
    acc = WindowAccumulator("bench", manifest.labels, manifest.reference_profile)
    tensors = [runtime.preprocess(f).copy() for f in frames]  # the same input, preprocessed

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), sess_options=opts,
                                   providers=["CPUExecutionProvider"])
    torch_inputs = [torch.from_numpy(t) for t in tensors]

    def pipeline(i: int, images: list[np.ndarray] = frames) -> None:
        t0 = time.perf_counter()
        result = runtime.infer(images[i])
        acc.add(result, (time.perf_counter() - t0) * 1000.0, 0.0)

    def pipeline_camera(i: int) -> None:
        pipeline(i, camera)

    def bare(i: int) -> None:
        session.run(None, {"input": tensors[i]})

    def eager(i: int) -> None:
        with torch.inference_mode():
            net(torch_inputs[i])

    variants: dict[str, Callable[[int], object]] = {
        "agent pipeline (input-size frames)": pipeline,
        "bare ORT session.run": bare,
        "torch eager": eager,
        "agent pipeline (640x480 frames)": pipeline_camera,
    }
    results: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            results[name].append(throughput(step, args.seconds, n))
    fps = {k: statistics.median(v) for k, v in results.items()}
    base = fps["bare ORT session.run"]

    print(f"### Agent per-frame pipeline ({time.strftime('%Y-%m-%d')})\n")
    print(f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"- onnxruntime {ort.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"- model: {model_name}, input {size}x{size}, width {width}, "
          f"{len(LABELS)} classes, embedding {net.embedding_dim}; threads {threads}; "
          f"median of {args.rounds} interleaved rounds of {args.seconds:g} s\n")
    print("| variant | frames/s | ms/frame | vs bare ORT |")
    print("|---|---:|---:|---:|")
    for name, value in fps.items():
        spread = f" (min {min(results[name]):.0f}, max {max(results[name]):.0f})"
        print(f"| {name} | {value:.0f}{spread} | {1000 / value:.2f} | {value / base:.2f} |")
    ratio = fps["agent pipeline (input-size frames)"] / base
    vs_torch = fps["agent pipeline (input-size frames)"] / fps["torch eager"]
    print(f"\npipeline / bare ORT = **{ratio:.3f}** (goal >= 0.85: "
          f"{'met' if ratio >= 0.85 else 'NOT met'}); pipeline / torch eager = **{vs_torch:.2f}**")


if __name__ == "__main__":
    main()
