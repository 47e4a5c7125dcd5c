"""How fast park clips render (trainer.synth.scenes), and what GrabCut cut-outs cost.

    python bench/scene_render.py [--frames 100] [--rounds 3] [--width 640 --height 480]
                                 [--photos DIR] [--grabcut-photos 40]

Variants take turns of ``--frames`` frames in rotating order, so a busy neighbour slows
them alike: the scene composer in memory (day, and each other condition), with the MJPG
writer, its ground truth alone (no pixels), and the close-up clip generator at the same
size as the reference (``trainer.synth.closeup.make_video``, per-pixel float work). Then,
on the photos' test split: GrabCut per photo (cold), a cache hit, and the share of photos
where GrabCut fell back to the ellipse.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import cpu_name

from trainer.synth import (
    CutoutCache,
    PhotoPool,
    Scene,
    SceneSpec,
    Schedule,
    cut_out,
    make_video,
)
from trainer.synth.video import open_writer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"
BUSY = Schedule(empty_share=0.1, animals_per_minute=6, distractors_per_minute=4)


def _scene(w: int, h: int, condition: str) -> Scene:
    return Scene(SceneSpec(width=w, height=h, seconds=600, seed=3, schedule=BUSY,
                           conditions=(condition,)))


def variants(w: int, h: int, n: int, tmp: Path) -> dict[str, Callable[[int], int]]:
    """name -> run(turn): renders ``n`` frames from frame ``turn * n``; returns objects seen."""
    scenes = {c: _scene(w, h, c) for c in ("day", "dusk", "night", "ir", "rain")}
    day = scenes["day"]

    def render(scene: Scene) -> Callable[[int], int]:
        return lambda t: sum(len(f.objects) for f in scene.frames(t * n, (t + 1) * n))

    def written(t: int) -> int:
        writer = open_writer(tmp / "scene.avi", 10.0, w, h)
        seen = 0
        for f in day.frames(t * n, (t + 1) * n):
            writer.write(f.image)
            seen += len(f.objects)
        writer.release()
        return seen

    def truth_only(t: int) -> int:
        return sum(len(day.rows(k)) for k in range(t * n, (t + 1) * n))

    def closeup(t: int) -> int:
        make_video(tmp / "closeup.avi", n_segments=1, segment_seconds=n / 10, fps=10,
                   size=(w, h), seed=t)
        return n

    out = {"scene, day (in memory)": render(day), "scene, day + MJPG write": written,
           "scene ground truth only": truth_only, "close-up make_video + write": closeup}
    out.update({f"scene, {c} (in memory)": render(s) for c, s in scenes.items() if c != "day"})
    return out


def time_variants(w: int, h: int, n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        runs = variants(w, h, n, Path(d))
        plan = time.perf_counter() - t0
        names = list(runs)
        secs: dict[str, list[float]] = {k: [] for k in names}
        objects: dict[str, int] = dict.fromkeys(names, 0)
        for r in range(rounds):
            for i in range(len(names)):
                name = names[(i + r) % len(names)]  # rotate who goes first
                t = time.perf_counter()
                objects[name] += runs[name](r)
                secs[name].append(time.perf_counter() - t)
    print(f"## Rendering {w}x{h}, {rounds} turns of {n} frames each\n")
    print(f"Planning five 10-minute scenes (backdrop, sprites, paths): {plan:.2f} s\n")
    print("| variant | frames/s | slowest turn | fastest turn | objects per frame |")
    print("|---|---|---|---|---|")
    fps = {}
    for name in names:
        fps[name] = rounds * n / sum(secs[name])
        print(f"| {name} | {fps[name]:.0f} | {n / max(secs[name]):.0f} | "
              f"{n / min(secs[name]):.0f} | {objects[name] / (rounds * n):.1f} |")
    print()
    day, write = fps["scene, day (in memory)"], fps["scene, day + MJPG write"]
    print(f"ratio scene render / close-up make_video (both written): "
          f"{write / fps['close-up make_video + write']:.1f}")
    print(f"ratio scene render in memory / with MJPG write: {day / write:.2f}")
    for c in ("dusk", "night", "ir", "rain"):
        print(f"ratio {c} / day render: {fps[f'scene, {c} (in memory)'] / day:.2f}")
    print(f"goal: >= 50 frames/s at 640x480 rendered; measured {day:.0f} in memory, "
          f"{write:.0f} written")


def time_grabcut(root: Path, count: int) -> None:
    pool = PhotoPool(root)
    photos = [p for label in ("cat", "dog") for p in pool.photos(label)[:count // 2]]
    cold, hit, methods = [], [], []
    with tempfile.TemporaryDirectory() as d:
        cache = CutoutCache(Path(d))
        for p in photos:
            img = np.asarray(cv2.imread(str(p.path)), np.uint8)
            t = time.perf_counter()
            cut = cut_out(img)
            cold.append(time.perf_counter() - t)
            methods.append(cut.method)
            cache.get(p.path, p.sha256)  # stores it
            t = time.perf_counter()
            cache.get(p.path, p.sha256)
            hit.append(time.perf_counter() - t)
    fell = methods.count("ellipse")
    print(f"\n## GrabCut cut-outs: {len(photos)} test-split photos of {root}\n")
    print("| step | median ms/photo | mean ms/photo |")
    print("|---|---|---|")
    print(f"| GrabCut, cold | {statistics.median(cold) * 1e3:.0f} | "
          f"{statistics.mean(cold) * 1e3:.0f} |")
    print(f"| cache hit (PNG decode) | {statistics.median(hit) * 1e3:.1f} | "
          f"{statistics.mean(hit) * 1e3:.1f} |")
    print(f"\nGrabCut fell back to the ellipse on {fell} of {len(photos)} photos "
          f"({fell / max(1, len(photos)):.0%})")
    print(f"ratio GrabCut cold / cache hit: {statistics.mean(cold) / statistics.mean(hit):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100, help="frames per turn")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--photos", type=Path, default=SHARED, help="ImageFolder for GrabCut")
    ap.add_argument("--grabcut-photos", type=int, default=40)
    a = ap.parse_args()
    print(f"machine: {cpu_name()}, OpenCV {cv2.__version__}, threads {cv2.getNumThreads()}\n")
    time_variants(a.width, a.height, a.frames, a.rounds)
    if (a.photos / "cat").is_dir() and a.grabcut_photos > 0:
        time_grabcut(a.photos, a.grabcut_photos)
    else:
        print(f"\nGrabCut skipped: no ImageFolder at {a.photos} (pass --photos)")


if __name__ == "__main__":
    main()
