"""Benchmark: the edge agent's per-frame pipeline vs bare ONNX Runtime vs eager torch.

    python bench/agent_pipeline.py [--arch default|compact|small|lite0 ...] [--threads N]
                                   [--regions K ...] [--seconds S] [--rounds R] [--block B]

Not a test. For each ``--arch`` (default: both ``default``, the trainer's default
network, ``trainer.model.PetNet`` with the default ``TrainerSettings``: arch compact,
64 px, width 1.0; and ``lite0``: EfficientNet-Lite0 at 224 px, the real-photo demo's
model; random weights, which throughput does not depend on) it exports the network with
``trainer.export.export_onnx`` and measures, on the same decoded frames (model input
size, BGR uint8):

* **pipeline** - what the agent does per frame: ``ModelRuntime.infer`` (resize, split,
  normalise into reused buffers; ORT ``run_with_iobinding``; finite check; softmax) then
  ``WindowAccumulator.add``, which queues the frame and every 2 MiB of frames (170 at
  64 px) summarises the queue: class counts, latency reservoirs, embedding projections,
  input statistics, histograms;
* **bare ORT** - ``session.run`` on the already preprocessed float32 tensor: the model
  alone, same model file, same session options (``edge_agent.runtime.session_options``)
  and threads;
* **torch eager** - the same network in ``torch.inference_mode()``, same threads and tensor.

A row for information: the pipeline fed 640x480 camera frames (the resize is then
part of the work).

The variants take turns (``--block`` seconds each, the order rotating; ``--rounds`` x
``--seconds`` per variant in all), so neighbours on a shared machine slow them alike.
``pipeline / bare ORT`` is the ratio of their frames/s over all turns (every frame's
work, the summary's batches included), with its range over ``--rounds`` runs of
consecutive turns. Also printed: the ratio of median frame times (it leaves out most
neighbours' time slices, and the summary's batches) and of CPU time per frame (all
threads of the process: the work, without the waits). A last
pass times the pipeline's steps. The goal is pipeline / bare ORT >= 0.85.

Then regions mode (``bench/_regions.py``) for each ``--regions`` K (default 1, 3, 5):
K animals on a 640x480 lawn; the regions pipeline against bare ORT on the very crops
it classifies (batched, and one run per crop), the whole-frame pipeline and bare ORT
on the whole frame; last, one summary table of every model and K with the ratios by
frames/s (wall clock) and by CPU time per frame.
Imports torch and the trainer: the bench is not a component, the agent never does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _machine import cpu_name  # bench/ is on sys.path: scripts run from it
from _regions import Row, regions_report, summary
from _turns import Step, interleaved

from edge_agent.config import _default_threads
from edge_agent.input_stats import InputStatistics
from edge_agent.runtime import ModelRuntime, session_options
from edge_agent.telemetry import QUEUE_BYTES, WindowAccumulator
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


def step_profile(runtime: ModelRuntime, manifest: ReleaseManifest, frames: list[np.ndarray],
                 seconds: float) -> dict[str, float]:
    """Microseconds per frame of each step of the pipeline (public calls only): medians
    over frames, and for the summary, which queues frames and summarises them a batch at
    a time, medians over runs of one batch."""
    names = ("preprocess (resize, split, normalise)", "ORT run_with_iobinding",
             "finite check, softmax, result", "summary (WindowAccumulator.add)",
             "  of which input statistics")
    clock, n = time.perf_counter, len(frames)
    pre: list[float] = []
    ort_run: list[float] = []
    rest: list[float] = []
    deadline = clock() + seconds / 2
    while len(pre) < 50 or clock() < deadline:
        frame = frames[len(pre) % n]
        t0 = clock()
        runtime.preprocess(frame)
        t1 = clock()
        result = runtime.infer(frame)  # preprocess again, then the rest
        t2 = clock()
        pre.append(t1 - t0)
        ort_run.append(result.inference_ms / 1000.0)
        rest.append(t2 - t1 - pre[-1] - ort_run[-1])
    acc = WindowAccumulator("bench", manifest.labels, manifest.reference_profile)
    batch = max(1, min(256, QUEUE_BYTES // frames[0].nbytes))  # frames queued, as acc does
    summary: list[float] = []
    deadline = clock() + seconds / 2
    while len(summary) < 3 or clock() < deadline:
        spent = 0.0
        for i in range(batch):
            result = runtime.infer(frames[i % n])
            t0 = clock()
            acc.add(result, 0.0, 0.0)
            spent += clock() - t0
        summary.append(spent / batch)
    stacked = np.stack([frames[i % n] for i in range(batch)])
    stats, out = InputStatistics(), np.empty((batch, 4), np.float32)
    per_batch: list[float] = []
    deadline = clock() + seconds / 4
    while len(per_batch) < 5 or clock() < deadline:
        t0 = clock()
        stats(stacked, out)
        per_batch.append((clock() - t0) / batch)
    samples = (pre, ort_run, rest, summary, per_batch)
    return {k: statistics.median(v) * 1e6 for k, v in zip(names, samples, strict=True)}


@dataclass
class Model:
    name: str
    net: PetNet | Lite0
    manifest: ReleaseManifest
    runtime: ModelRuntime
    session: ort.InferenceSession  # bare ORT: the same file, session options and threads
    size: int
    width: float


def build(arch_arg: str, threads: int) -> Model:
    """The trainer's network for ``arch_arg``, exported as the trainer does, loaded twice:
    by the agent's runtime and as a bare ORT session."""
    defaults = TrainerSettings.model_fields  # the trainer's default model config
    size: int = defaults["input_size"].default
    width: float = defaults["width_mult"].default
    arch: str = defaults["arch"].default if arch_arg == "default" else arch_arg
    net: PetNet | Lite0
    if arch == "lite0":
        size, width = 224, 1.0
        net = Lite0(num_classes=len(LABELS), input_size=size).eval()
        name = "EfficientNet-Lite0"
    else:
        net = PetNet(num_classes=len(LABELS), width_mult=width, input_size=size,
                     arch=arch).eval()
        name = f"trainer PetNet ({arch})"
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    path = export_onnx(net, tmp / "model.onnx", size)
    manifest = manifest_for(path, size, net.embedding_dim)
    runtime = ModelRuntime(path, manifest, threads)
    session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                   providers=["CPUExecutionProvider"])
    shutil.rmtree(tmp, ignore_errors=True)  # the sessions hold the model now
    return Model(name, net, manifest, runtime, session, size, width)


def whole_frame_report(model: Model, args: argparse.Namespace, turns: int) -> None:
    """Frame mode side by side: the agent's pipeline, bare ORT, torch eager."""
    runtime, size, n = model.runtime, model.size, 32
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    camera = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]
    acc = WindowAccumulator("bench", model.manifest.labels, model.manifest.reference_profile)
    tensors = [runtime.preprocess(f).copy() for f in frames]  # the same input, preprocessed
    torch_inputs = [torch.from_numpy(t) for t in tensors]

    def pipeline(i: int, images: list[np.ndarray] = frames) -> None:
        t0 = time.perf_counter()
        result = runtime.infer(images[i])
        acc.add(result, (time.perf_counter() - t0) * 1000.0, 0.0)

    def eager(i: int) -> None:
        with torch.inference_mode():
            model.net(torch_inputs[i])

    pipe, bare = "agent pipeline (input-size frames)", "bare ORT session.run"
    variants: dict[str, Step] = {
        pipe: pipeline,
        bare: lambda i: model.session.run(None, {"input": tensors[i]}),
        "torch eager": eager,
        "agent pipeline (640x480 frames)": lambda i: pipeline(i, camera),
    }
    load_before = os.getloadavg()
    done = interleaved(variants, turns, args.block, n)
    load_after = os.getloadavg()
    # Frames/s over all turns counts every frame's work, the summary's batch every 2 MiB
    # of frames included: a median turn (50 frames) would leave most batches out. The
    # variants take turns, so neighbours on the machine slow them alike; the spread is
    # the ratio in each of ``rounds`` runs of consecutive turns. The median frame leaves
    # out the batches and most neighbours' time slices; CPU time per frame (all threads
    # of the process) leaves out the time spent waiting for a core.
    fps = {k: v.fps() for k, v in done.items()}
    ratio = fps[pipe] / fps[bare]
    group = max(1, turns // args.rounds)
    parts = [slice(i, i + group) for i in range(0, turns - group + 1, group)]
    spread = [done[pipe].fps(part) / done[bare].fps(part) for part in parts]
    ms = {k: statistics.median(v.times) * 1000.0 for k, v in done.items()}
    cpu_ms = {k: v.cpu_ms() for k, v in done.items()}
    steps = step_profile(runtime, model.manifest, frames, min(3.0, args.seconds * 3))

    print(f"\n### Agent per-frame pipeline, {model.name} ({time.strftime('%Y-%m-%d')})\n")
    print(f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
          f"load {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"- onnxruntime {ort.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"- model: {model.name}, input {size}x{size}, width {model.width}, "
          f"{len(LABELS)} classes, embedding {model.net.embedding_dim}; threads {args.threads}; "
          f"the variants take {turns} turns of {args.block:g} s each\n")
    print("| variant | frames/s, all turns (slowest, fastest turn) | ms/frame, median frame | "
          "CPU ms/frame | vs bare ORT (frames/s) |")
    print("|---|---:|---:|---:|---:|")
    for name, value in fps.items():
        rates = done[name].turn_fps()
        print(f"| {name} | {value:.0f} ({min(rates):.0f}, {max(rates):.0f}) | "
              f"{ms[name]:.3f} | {cpu_ms[name]:.3f} | {value / fps[bare]:.2f} |")
    print("\n#### Where a pipeline frame's time goes (input-size frames)\n")
    print("| step | us/frame, median |\n|---|---:|")
    for name, us in steps.items():
        print(f"| {name} | {us:.1f} |")
    vs_torch = fps[pipe] / fps["torch eager"]
    print(f"\npipeline / bare ORT = **{ratio:.3f}** (frames/s over {turns} turns each; "
          f"{min(spread):.2f}-{max(spread):.2f} in {len(parts)} runs of {group} turns; "
          f"by median frame "
          f"{ms[bare] / ms[pipe]:.2f}, by CPU time {cpu_ms[bare] / cpu_ms[pipe]:.2f}; "
          f"goal >= 0.85: {'met' if ratio >= 0.85 else 'NOT met'}); "
          f"pipeline / torch eager = **{vs_torch:.2f}**")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=_default_threads(),
                    help="intra-op threads for all variants (default: the agent's default)")
    ap.add_argument("--seconds", type=float, default=1.0, help="per variant per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--block", type=float, default=0.05,
                    help="seconds of one turn of one variant (rounds x seconds are cut in turns)")
    ap.add_argument("--regions", type=int, nargs="*", default=[1, 3, 5],
                    help="animals in the regions-mode scenes, one scene each (none: skip "
                    "regions mode)")
    ap.add_argument("--arch", nargs="+", choices=["default", "compact", "small", "lite0"],
                    default=["default", "lite0"], help="default: the trainer's default "
                    "PetNet (arch compact); lite0: EfficientNet-Lite0 at 224 px")
    ap.add_argument("--no-frame-mode", action="store_true",
                    help="regions mode only (skip the whole-frame tables)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    turns = max(3, round(args.rounds * args.seconds / args.block))
    rows: list[Row] = []
    for arch in args.arch:
        model = build(arch, args.threads)
        if not args.no_frame_mode:
            whole_frame_report(model, args, turns)
        for k in [k for k in args.regions if k > 0]:
            rows.append(regions_report(model.name, model.runtime, model.session, k, turns,
                                       args.block))
    if rows:
        summary(rows, args.threads)


if __name__ == "__main__":
    main()
