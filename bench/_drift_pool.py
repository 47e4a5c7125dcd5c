"""Real feature streams for ``drift_replay.py``: the agent's own window summaries of wide
park clips filmed from held-out photos, computed once and cached.

A *pool camera* is one park scene (its seed: backdrop, paths, light drift, shake). For
each pool camera and each variant the pool holds one continuous clip cut into
consecutive windows, each summarised exactly as a camera of ``parkwatch agent run`` in
regions mode summarises it: ``RegionAnalyzer`` (motion regions, crops, one ONNX Runtime
run per frame, tracks) then ``WindowAccumulator.close`` (the ``CameraWindow`` the agent
publishes, JSON). Variants:

* conditions, what a camera sees in a normal day: ``day``, ``dusk``, ``night``, ``ir``
  (the scene's infrared illuminator at night) and ``rain``;
* shifts, made by transforming the day clip's frames (the same animals walk the same
  paths): ``moved`` (the camera turned and zoomed: a fixed 1.35x zoom off centre),
  ``blur`` (a dirty, misfocused lens: Gaussian blur and a grey veil), ``ir_stuck`` (the
  IR filter stuck by day: ``trainer.synth``'s IR rendering of day frames),
  ``class_mix`` (only cats cross), ``new_object`` (no animals; many people, balls and
  leaves).

Windows are ``window_seconds`` of frames at ``fps`` (the agent's ``sample_fps``); the
cache key holds every parameter and the model's sha256, so a changed model or clip
recomputes. The cache is a JSON file under the cache folder, never the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.capture import CaptureCounters
from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.runtime import ModelRuntime
from edge_agent.telemetry import WindowAccumulator
from trainer.synth import PhotoPool, Scene, SceneSpec, Schedule, apply_shift

CONDITIONS = ("day", "dusk", "night", "ir", "rain")
SHIFTS = ("moved", "blur", "ir_stuck", "class_mix", "new_object")
BUSY = Schedule(empty_share=0.3, animals_per_minute=4.0, distractors_per_minute=2.0)
CROWD = Schedule(empty_share=1.0, animals_per_minute=0.0, distractors_per_minute=12.0)



def add_pool_args(ap: argparse.ArgumentParser) -> None:
    """The arguments every drift bench built on the pool takes: the model, the photos the
    pool films and where the pool is cached."""
    ap.add_argument("--model", type=Path, required=True, help="a regions-mode trainer out dir")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "XDG_CACHE_HOME", Path.home() / ".cache")) / "parkwatch-bench",
        help="where the pool of windows is cached (never the repository)")

@dataclass(frozen=True)
class PoolSpec:
    cameras: int = 2
    windows: int = 16  # per camera and condition
    shift_windows: int = 6  # per camera and shift
    window_seconds: float = 60.0
    fps: float = 1.0
    seed: int = 0
    # Windows of chosen variants instead of ``windows``/``shift_windows``, e.g. the day and
    # dusk clips at a production baseline's size while the other clips stay small.
    sizes: tuple[tuple[str, int], ...] = ()
    # Clips longer than this many windows are computed in parts by several workers (0:
    # each clip in one pass), each part after PREROLL windows of warm-up.
    segment: int = 0

    def length(self, variant: str) -> int:
        """Windows of the clip of ``variant``."""
        return dict(self.sizes).get(
            variant, self.windows if variant in CONDITIONS else self.shift_windows)

    def key(self, model_sha: str) -> str:
        spec = {k: v for k, v in self.__dict__.items()
                if k not in ('windows', 'shift_windows', 'sizes', 'segment')}
        # 3: rain is a condition; 4: windows carry the edge layout; 5: and the background's
        text = json.dumps([spec, model_sha, 5], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


Pool = dict[str, dict[str, list[dict[str, Any]]]]  # camera -> variant -> windows in order
# Windows an agent analyses before a part's first window: its background model, tracks
# and condition settle as after a restart (MOG2 learns a view in well under a minute at
# the bench's rate; a track outlives a window's boundary by seconds).
PREROLL = 2


def _moved(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((0.35 * w, 0.6 * h), 4.0, 1.35)
    return np.asarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT))


def _dirty(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), 3.0)
    return np.asarray(cv2.addWeighted(blurred, 0.75, np.full_like(image, 150), 0.25, 0))


def _frames(spec: SceneSpec | Scene, variant: str, start: int = 0, end: int | None = None
            ) -> Iterator[np.ndarray]:
    """Frames [start, end) of the clip: a frame is the same whatever was rendered before
    (``spec``: the clip's planned scene, or its spec to plan it from)."""
    s = spec if isinstance(spec, Scene) else Scene(spec)
    seed = s.spec.seed
    for k in range(start, s.frame_count if end is None else end):
        image = s.render(k).image
        if variant == "moved":
            image = _moved(image)
        elif variant == "blur":
            image = _dirty(image)
        elif variant == "ir_stuck":
            image = apply_shift(image, "ir", 0.8, np.random.default_rng([seed, k]))
        yield image


def _scene(p: PoolSpec, camera: int, variant: str, windows: int, photos: PhotoPool,
           cutouts: Path) -> SceneSpec:
    condition = variant if variant in CONDITIONS else "day"
    schedule = CROWD if variant == "new_object" else BUSY
    labels = ("cat",) if variant == "class_mix" else ("cat", "dog")
    # The seed fixes the scene's backdrop: one seed per pool camera, whatever the variant.
    return SceneSpec(seconds=windows * p.window_seconds, fps=p.fps, seed=1000 * p.seed + camera,
                     schedule=schedule, conditions=(condition,), labels=labels,
                     photos=photos, cutout_cache=cutouts)


def summarise(frames: Iterator[np.ndarray], runtime: ModelRuntime, camera_id: str,
              fps: float, window_frames: int, first: int = 0) -> list[dict[str, Any]]:
    """Consecutive windows of one clip, as the agent publishes each camera's window
    (``first``: the clip's frame number of the first frame given)."""
    config = CameraConfig(camera_id=camera_id, source="bench", sample_fps=fps)
    analyzer = RegionAnalyzer(config, lambda *a, **kw: None, frozenset(), 0.6)
    manifest = runtime.manifest
    acc = WindowAccumulator(camera_id, manifest.labels, manifest.reference_profile,
                            mode="regions")
    out: list[dict[str, Any]] = []
    for k, image in enumerate(frames, first):
        t0 = time.perf_counter()
        crops = analyzer.analyse(image, k / fps, runtime)
        acc.add_crops(crops, (time.perf_counter() - t0) * 1000.0, 0.0,
                      analyzer.condition_index)
        if (k + 1 - first) % window_frames == 0:
            window = acc.close("up", CaptureCounters(captured=window_frames), k / fps,
                               mode="regions", regions=analyzer.close_window())
            out.append(window.model_dump(mode="json"))
    analyzer.stop()
    return out


def _path(p: PoolSpec, model_sha: str, cam: int, variant: str) -> Path:
    n = p.length(variant)
    parts = f"_s{p.segment}" if 0 < p.segment < n else ""
    return Path(f"drift_pool_{p.key(model_sha)}_{cam}_{variant}_{n}{parts}.json")


def _part(p: PoolSpec, cam: int, variant: str, model_dir: Path, photos_root: Path,
          cache: Path, lo: int, hi: int) -> list[dict[str, Any]]:
    """Windows [lo, hi) of one clip, after up to PREROLL windows of warm-up."""
    return next(parts(p, cam, variant, model_dir, photos_root, cache, [(lo, hi)]))


def parts(p: PoolSpec, cam: int, variant: str, model_dir: Path, photos_root: Path,
          cache: Path, ranges: list[tuple[int, int]]) -> Iterator[list[dict[str, Any]]]:
    """Windows [lo, hi) of one clip for each range in turn, each after up to PREROLL windows
    of warm-up, from one planned scene (planning a long clip's cast is most of a short
    part's cost)."""
    from region_accuracy import load_release

    path, manifest, settings = load_release(model_dir)
    runtime = ModelRuntime(path, manifest, 1)
    photos = PhotoPool(photos_root, "test", int(settings["seed"]),  # type: ignore[call-overload]
                       float(settings["val_fraction"]),  # type: ignore[arg-type]
                       float(settings["test_fraction"]))  # type: ignore[arg-type]
    scene = Scene(_scene(p, cam, variant, p.length(variant), photos, cache / "cutouts"))
    per = round(p.window_seconds * p.fps)
    for lo, hi in ranges:
        start = max(0, lo - PREROLL)
        windows = summarise(_frames(scene, variant, start * per, hi * per), runtime,
                            f"cam{cam}", p.fps, per, start * per)
        yield windows[lo - start:]


def _clip(p: PoolSpec, cam: int, variant: str, model_dir: Path, photos_root: Path,
          cache: Path) -> tuple[str, str, list[dict[str, Any]]]:
    """One clip's windows in one pass, from its cache file when there, else computed and
    saved."""
    from region_accuracy import load_release

    _, manifest, _ = load_release(model_dir)
    out = cache / _path(p, manifest.artifact.sha256, cam, variant)
    if out.exists():
        return f"cam{cam}", variant, list(json.loads(out.read_text()))
    windows = _part(p, cam, variant, model_dir, photos_root, cache, 0, p.length(variant))
    out.write_text(json.dumps(windows))
    return f"cam{cam}", variant, windows


def build(p: PoolSpec, model_dir: Path, photos_root: Path, cache: Path, workers: int,
          log: Any = print) -> Pool:
    """The pool: each clip from its cache file when there (same spec, model and length),
    else computed by ``workers`` processes and saved; a clip longer than ``p.segment``
    windows in parts, by as many workers."""
    from region_accuracy import load_release

    cache.mkdir(parents=True, exist_ok=True)
    (cache / "cutouts").mkdir(exist_ok=True)
    sha = load_release(model_dir)[1].artifact.sha256
    clips = [(c, v) for c in range(p.cameras) for v in (*CONDITIONS, *SHIFTS)]
    pool: Pool = {}
    parts: dict[tuple[int, str], list[Any]] = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as ex:
        futures = []
        for c, v in clips:
            n, path = p.length(v), cache / _path(p, sha, c, v)
            if 0 < p.segment < n and not path.exists():
                parts[(c, v)] = [ex.submit(_part, p, c, v, model_dir, photos_root, cache, lo,
                                           min(lo + p.segment, n))
                                 for lo in range(0, n, p.segment)]
            else:
                futures.append(ex.submit(_clip, p, c, v, model_dir, photos_root, cache))
        for f in as_completed(futures):
            cam, variant, windows = f.result()
            pool.setdefault(cam, {})[variant] = windows
            log(f"  pool {cam} {variant}: {len(windows)} windows "
                f"({time.perf_counter() - started:.0f} s so far)")
        for (c, v), fs in parts.items():
            windows = [w for f in fs for w in f.result()]
            (cache / _path(p, sha, c, v)).write_text(json.dumps(windows))
            pool.setdefault(f"cam{c}", {})[v] = windows
            log(f"  pool cam{c} {v}: {len(windows)} windows in {len(fs)} parts "
                f"({time.perf_counter() - started:.0f} s so far)")
    return pool
