"""Regions mode for ``agent_pipeline.py``: a park scene with K animals, the agent's regions
path, and bare ONNX Runtime on the very crops it classifies.

The scene: a 640x480 lawn (smooth noise) with K coloured ellipses, each 12 % of the
frame wide, going round its own circle once per clip, so the clip loops seamlessly and
the background model finds about K moving regions per frame (an animal that keeps
coming back becomes part of the background model for a few frames of each lap).

Ratios by frames/s are wall clock over interleaved turns; ratios by CPU time use the
process's CPU time per frame (every thread), which a busy neighbour hardly moves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from _turns import Step, Turns, interleaved

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.boxes import Box
from edge_agent.regions.crops import CropCutter
from edge_agent.regions.proposals import MotionRegions
from edge_agent.runtime import ModelRuntime
from edge_agent.telemetry import WindowAccumulator

FPS = 10.0
SPLIT_NECK = 0.6  # the motion stage timed with regions split into bodies (default 0)
REGIONS = "regions pipeline (640x480 frames)"
BARE_BATCHED = "bare ORT, one batched run of the frame's crops"
BARE_PER_CROP = "bare ORT, one run per crop"
WHOLE = "whole-frame pipeline (the same 640x480 frames)"
BARE_WHOLE = "bare ORT, the whole frame (preprocessed)"
MOTION = "motion regions alone (background model, boxes)"
MOTION_UNSPLIT = "motion regions alone, regions holding several animals not split"


def park_frames(n: int, k: int, size: tuple[int, int] = (640, 480), seed: int = 0
                ) -> list[np.ndarray]:
    width, height = size
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.normal(0, 1, (height // 16, width // 16)).astype(np.float32),
                       size, interpolation=cv2.INTER_CUBIC)
    lawn = np.clip(np.array([90.0, 130.0, 100.0]) + 12 * noise[..., None], 0, 255)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    cell_w, cell_h = width / cols, height / rows
    axes = (round(0.06 * width), round(0.045 * width))
    colours = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(k)]
    frames = []
    for i in range(n):
        img = lawn.astype(np.uint8)
        for j in range(k):
            angle = 2 * math.pi * (i / n + j / k)
            cx = (j % cols + 0.5) * cell_w + 0.25 * cell_w * math.cos(angle)
            cy = (j // cols + 0.5) * cell_h + 0.25 * cell_h * math.sin(angle)
            cv2.ellipse(img, (round(cx), round(cy)), axes, 0, 0, 360, colours[j], -1)
        noisy = img.astype(np.int16) + rng.integers(-3, 4, img.shape, dtype=np.int16)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


@dataclass
class Variants:
    steps: dict[str, Step]
    replay: Callable[[], None]  # untimed, after the regions pipeline's turn
    counts: dict[str, int]  # the regions pipeline's frames and crops
    seconds_per_frame: float  # of the regions pipeline, in its last warm-up lap


def regions_variants(runtime: ModelRuntime, session: ort.InferenceSession,
                     frames: list[np.ndarray], k: int) -> Variants:
    """The variants to interleave. The regions pipeline leads each turn and notes the
    boxes it classified; ``replay`` cuts them again and preprocesses them as the agent
    does, and the bare ORT variants run those very crops in the same order."""
    camera = CameraConfig(camera_id="bench", source="bench", sample_fps=FPS,
                          region_max_per_frame=max(6, k))
    live = RegionAnalyzer(camera, lambda *a, **kw: None, frozenset({"empty"}), 0.6)
    manifest = runtime.manifest
    acc = WindowAccumulator("bench", manifest.labels, manifest.reference_profile,
                            mode="regions")
    clock, counts = [0], {"frames": 0, "crops": 0}
    lap_started = 0.0
    for lap in range(3):  # the background model settles over the first laps
        lap_started = time.perf_counter()
        for i, frame in enumerate(frames):
            live.analyse(frame, (lap * len(frames) + i) / FPS, runtime)
    per_frame = (time.perf_counter() - lap_started) / len(frames)
    clock[0] = 3 * len(frames)
    seen: list[tuple[int, list[Box]]] = []  # this turn's frames and boxes, in order
    cutter = CropCutter(manifest.input.width, manifest.input.height, manifest.crops,
                        camera.region_max_per_frame)
    replayed: list[tuple[np.ndarray | None, list[np.ndarray]]] = []
    cursor = {BARE_BATCHED: 0, BARE_PER_CROP: 0}

    def regions(i: int) -> None:  # turns hand every variant the same consecutive frames
        c = clock[0]
        clock[0] += 1
        t0 = time.perf_counter()
        crops = live.analyse(frames[i], c / FPS, runtime)
        acc.add_crops(crops, (time.perf_counter() - t0) * 1000.0, 0.0, live.condition_index)
        seen.append((i, list(live.boxes) if crops is not None else []))
        counts["frames"] += 1
        counts["crops"] += len(seen[-1][1])

    def replay() -> None:
        replayed.clear()
        for i, boxes in seen:
            images: np.ndarray | list[np.ndarray] = cutter.cut(frames[i], boxes) if boxes else []
            tensors = [runtime.preprocess(c).copy() for c in images]
            replayed.append((np.concatenate(tensors) if tensors else None, tensors))
        seen.clear()
        cursor.update(dict.fromkeys(cursor, 0))

    def bare_batched(_: int) -> None:
        batch = replayed[cursor[BARE_BATCHED]][0]
        cursor[BARE_BATCHED] += 1
        if batch is not None:
            session.run(None, {"input": batch})

    def bare_per_crop(_: int) -> None:
        tensors = replayed[cursor[BARE_PER_CROP]][1]
        cursor[BARE_PER_CROP] += 1
        for tensor in tensors:
            session.run(None, {"input": tensor})

    motion = MotionRegions(camera.model_copy(update={"region_split_neck": SPLIT_NECK}))
    unsplit = MotionRegions(camera.model_copy(update={"region_split_neck": 0.0}))
    whole = WindowAccumulator("bench", manifest.labels, manifest.reference_profile)
    whole_tensors = [runtime.preprocess(f).copy() for f in frames]

    def whole_frame(i: int) -> None:
        t0 = time.perf_counter()
        result = runtime.infer(frames[i])
        whole.add(result, (time.perf_counter() - t0) * 1000.0, 0.0)

    steps: dict[str, Step] = {
        REGIONS: regions,
        BARE_BATCHED: bare_batched,
        BARE_PER_CROP: bare_per_crop,
        WHOLE: whole_frame,
        BARE_WHOLE: lambda i: session.run(None, {"input": whole_tensors[i]}),
        MOTION: lambda i: motion(frames[i]),
        MOTION_UNSPLIT: lambda i: unsplit(frames[i]),
    }
    return Variants(steps, replay, counts, per_frame)


@dataclass(frozen=True)
class Row:
    """One model and K: frames/s (wall clock) and CPU ms per frame of each variant."""

    model: str
    k: int
    crops: float  # per frame, in the regions pipeline
    fps: dict[str, float]
    cpu_ms: dict[str, float]

    def by_fps(self, other: str) -> float:
        return self.fps[REGIONS] / self.fps[other]

    def by_cpu(self, other: str) -> float:
        return self.cpu_ms[other] / self.cpu_ms[REGIONS]


def regions_report(model: str, runtime: ModelRuntime, session: ort.InferenceSession, k: int,
                   turns: int, block: float) -> Row:
    """Regions mode side by side: K animals per frame against bare ORT on the same crops
    (batched and one run per crop) and against whole-frame mode on the same frames."""
    frames = park_frames(64, k)
    variants = regions_variants(runtime, session, frames, k)
    per_turn = max(1, round(block / variants.seconds_per_frame))
    laps = max(1, round(turns * per_turn / len(frames)))  # whole laps of the clip
    turns = math.ceil(laps * len(frames) / per_turn)
    done: dict[str, Turns] = interleaved(variants.steps, turns, block, len(frames), per_turn,
                                         after_lead=variants.replay)
    counts = variants.counts
    row = Row(model, k, counts["crops"] / max(1, counts["frames"]),
              {n: v.fps() for n, v in done.items()}, {n: v.cpu_ms() for n, v in done.items()})
    print(f"\n#### Regions mode, {model}: {k} animals moving on a 640x480 lawn; "
          f"{row.crops:.2f} crops per frame; one batched run: {runtime.batch_crops}; "
          f"turns of {per_turn} frames, the same for every variant\n")
    print("| variant | frames/s, wall (slowest, fastest turn) | CPU ms/frame | "
          "vs regions pipeline (frames/s) |")
    print("|---|---:|---:|---:|")
    for name, value in row.fps.items():
        rates = done[name].turn_fps()
        print(f"| {name} | {value:.0f} ({min(rates):.0f}, {max(rates):.0f}) | "
              f"{row.cpu_ms[name]:.2f} | {value / row.fps[REGIONS]:.2f} |")
    rest = row.cpu_ms[REGIONS] - row.cpu_ms[BARE_BATCHED]
    motion = row.cpu_ms[MOTION] / row.cpu_ms[BARE_BATCHED]
    print(f"\nCPU per frame beyond the model's batched run: {rest:.2f} ms, of which motion "
          f"regions alone {row.cpu_ms[MOTION]:.2f} ms = {motion:.0%} of the model's run (the "
          f"goal, 0.85, leaves 18 % of the model's run, 15 % of the frame, for all the rest); "
          f"splitting regions that hold several animals adds "
          f"{row.cpu_ms[MOTION] - row.cpu_ms[MOTION_UNSPLIT]:.3f} ms")
    return row


def summary(rows: list[Row], threads: int) -> None:
    """Every model and K in one table: regions pipeline / bare ORT on the same crops,
    / whole-frame pipeline, whole-frame pipeline / bare ORT whole frame."""
    print(f"\n### Regions mode: ratios (wall = frames/s over interleaved turns; CPU = process "
          f"CPU time per frame; {threads} ORT thread(s); goal for regions / bare crops >= 0.85)\n")
    print("| model | K | crops/frame | regions frames/s | regions CPU ms/frame | "
          "/ bare batched, wall | CPU | / bare per crop, wall | CPU | / whole-frame, wall | "
          "CPU | whole-frame / bare whole, CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        whole = r.cpu_ms[BARE_WHOLE] / r.cpu_ms[WHOLE]
        print(f"| {r.model} | {r.k} | {r.crops:.2f} | {r.fps[REGIONS]:.0f} | "
              f"{r.cpu_ms[REGIONS]:.2f} | {r.by_fps(BARE_BATCHED):.2f} | "
              f"{r.by_cpu(BARE_BATCHED):.2f} | {r.by_fps(BARE_PER_CROP):.2f} | "
              f"{r.by_cpu(BARE_PER_CROP):.2f} | {r.by_fps(WHOLE):.2f} | {r.by_cpu(WHOLE):.2f} "
              f"| {whole:.2f} |")
    for r in rows:
        print(f"- regions / bare ORT batched crops, {r.model}, K={r.k}: "
              f"**{r.by_cpu(BARE_BATCHED):.2f}** by CPU time, {r.by_fps(BARE_BATCHED):.2f} "
              f"by frames/s")
