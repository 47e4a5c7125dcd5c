"""Regions mode for ``agent_pipeline.py``: a park scene with K animals, the agent's regions
path, and bare ONNX Runtime on the very crops it classifies.

The scene: a 640x480 lawn (smooth noise) with K coloured ellipses, each 12 % of the
frame wide, going round its own circle once per clip, so the clip loops seamlessly and
the background model finds K moving regions in every frame.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import onnxruntime as ort

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.proposals import MotionRegions
from edge_agent.runtime import ModelRuntime
from edge_agent.telemetry import WindowAccumulator

Step = Callable[[int], object]
FPS = 10.0


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


def regions_variants(runtime: ModelRuntime, session: ort.InferenceSession,
                     frames: list[np.ndarray], k: int
                     ) -> tuple[dict[str, Step], float, dict[str, int]]:
    """The variants to interleave, the mean crops per frame of a pre-pass (the bare runs
    use that pre-pass's crops, preprocessed as the agent does), and the live counts of
    the regions variant (frames, crops)."""
    camera = CameraConfig(camera_id="bench", source="bench", sample_fps=FPS,
                          region_max_per_frame=max(6, k))

    def analyzer() -> RegionAnalyzer:
        return RegionAnalyzer(camera, lambda *a, **kw: None, frozenset({"empty"}), 0.6)

    manifest = runtime.manifest
    acc = WindowAccumulator("bench", manifest.labels, manifest.reference_profile,
                            mode="regions")
    live, clock, counts = analyzer(), [0], {"frames": 0, "crops": 0}
    batched: list[np.ndarray] = []
    per_crop: list[list[np.ndarray]] = []
    pre = analyzer()
    for lap in range(3):  # the background model settles over the first laps
        for i, frame in enumerate(frames):
            crops = pre.analyse(frame, (lap * len(frames) + i) / FPS, runtime)
            if lap == 2:
                images = crops.images if crops is not None else []
                tensors = [runtime.preprocess(c).copy() for c in images]
                per_crop.append(tensors)
                batched.append(np.concatenate(tensors) if tensors else tensors)
    mean_crops = statistics.mean(len(t) for t in per_crop)
    for lap in range(3):
        for i, frame in enumerate(frames):
            live.analyse(frame, (lap * len(frames) + i) / FPS, runtime)
    clock[0] = 3 * len(frames)

    def regions(_: int) -> None:
        c = clock[0]
        clock[0] += 1
        t0 = time.perf_counter()
        crops = live.analyse(frames[c % len(frames)], c / FPS, runtime)
        counts["frames"] += 1
        counts["crops"] += len(live.boxes) if crops is not None else 0
        acc.add_crops(crops, (time.perf_counter() - t0) * 1000.0, 0.0, live.condition_index)

    motion = MotionRegions(camera)

    def bare_batched(i: int) -> None:
        if len(batched[i]):
            session.run(None, {"input": batched[i]})

    def bare_per_crop(i: int) -> None:
        for tensor in per_crop[i]:
            session.run(None, {"input": tensor})

    whole = WindowAccumulator("bench", manifest.labels, manifest.reference_profile)

    def whole_frame(i: int) -> None:
        t0 = time.perf_counter()
        result = runtime.infer(frames[i])
        whole.add(result, (time.perf_counter() - t0) * 1000.0, 0.0)

    variants: dict[str, Step] = {
        REGIONS: regions,
        BARE_BATCHED: bare_batched,
        BARE_PER_CROP: bare_per_crop,
        WHOLE: whole_frame,
        "motion regions alone (background model, boxes)": lambda i: motion(frames[i]),
    }
    return variants, mean_crops, counts


REGIONS = "regions pipeline (640x480 frames)"
BARE_BATCHED = "bare ORT, one batched run of the frame's crops"
BARE_PER_CROP = "bare ORT, one run per crop"
WHOLE = "whole-frame pipeline (the same 640x480 frames)"
