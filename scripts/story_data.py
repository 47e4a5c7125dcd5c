"""The story's data: night images for retraining (the park's night scene under the dimmed
lamps), a held-out set of day and dimmed-night images never trained on, and each night
camera's two night clips: its scene at night, and the same night once the lamps are
dimmed."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scripts.phases import PhaseError, console
from scripts.synth_images import generate_dataset
from trainer.synth import SceneSpec, write_clip
from trainer.synth.groundtruth import sidecar_path
from trainer.synth.photos import held_out_photos
from trainer.synth.shifts import apply_shift
from trainer.synth.video import open_writer

# Night at 0.9 reads as night to the agent's light rule on every frame (mean luma 28-38,
# saturation 0.32-0.35 on the park renderer); at 0.8 one frame in seven reads as dusk.
NIGHT_SEVERITY = 0.9
# The lamps dimmed: luma 16-22, still night on every frame, and the agent still finds
# 79 % of the regions it found before (143 against 182 over 30 s of a night clip).
DIM_SEVERITY = 0.6
DIMMED_NIGHT: tuple[tuple[str, float], ...] = (("night", NIGHT_SEVERITY), ("dim", DIM_SEVERITY))


def story_data(
    workdir: Path, videos: Path, night_clips: dict[str, SceneSpec], day: Path,
    photos: Path | None = None,
) -> dict[str, Path]:
    """Night images for retraining (dimmed-night copies of the day training images), a
    held-out set (day + dimmed night) and, per night camera (``night_clips``: its day
    scene's spec at night), its night clip and its dimmed-night clip. With ``photos`` the
    held-out set is the photos of the trainer's test split (and their dimmed-night copies);
    without, freshly drawn synthetic images."""
    out = {"retrain": workdir / "retrain", "holdout": workdir / "holdout"}
    night, held_day, held_night = (workdir / n for n in ("night-train", "holdout-day",
                                                          "holdout-night"))
    jobs: list[tuple[str, Callable[[], object]]] = []
    if not out["retrain"].exists():
        jobs.append(("dimmed-night training images", partial(shifted_copy, day, night)))
        jobs.append(("retraining set = day + night", partial(_merge, [day, night],
                                                              out["retrain"])))
    if not out["holdout"].exists():
        jobs.append(("held-out day images", partial(held_out_copy, photos, held_day) if photos
                     else partial(generate_dataset, held_day, n_per_class=60, seed=7, size=128)))
        jobs.append(("held-out night images", partial(shifted_copy, held_day, held_night)))
        jobs.append(("held-out set = day + night", partial(_merge, [held_day, held_night],
                                                            out["holdout"])))
    for device_id, spec in night_clips.items():
        video, dimmed = night_clip(videos, device_id), dimmed_clip(videos, device_id)
        if not video.exists():
            jobs.append((f"night clip {video.name}", partial(write_clip, video, spec)))
        if not dimmed.exists():
            jobs.append((f"dimmed-night clip {dimmed.name}", partial(dim_clip, video, dimmed)))
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("night data", total=len(jobs))
        for what, job in jobs:
            progress.update(task, description=what)
            job()
            progress.advance(task)
    return out


def night_clip(videos: Path, device_id: str) -> Path:
    return videos / f"{device_id}-night.avi"


def dimmed_clip(videos: Path, device_id: str) -> Path:
    return videos / f"{device_id}-night-dimmed.avi"


def dim_clip(src: Path, dest: Path) -> None:
    """``src`` (a night clip) with the lamps dimmed: each frame darker, with the gain
    noise that lifts it (``trainer.synth.shifts`` "dim"), and the same ground truth."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    tmp = dest.with_suffix(".tmp.avi")
    writer = open_writer(tmp, fps, *size)
    try:
        k = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            rng = np.random.default_rng([17, k])
            writer.write(apply_shift(frame, "dim", DIM_SEVERITY, rng))
            k += 1
    finally:
        cap.release()
        writer.release()
    if k == 0:
        raise PhaseError(f"cannot read {src}: delete it and run the demo again")
    shutil.copyfile(sidecar_path(src), sidecar_path(dest))
    tmp.replace(dest)


def shifted_copy(src: Path, dest: Path,
                 shifts: Sequence[tuple[str, float]] = DIMMED_NIGHT) -> None:
    """``src`` (an ImageFolder) as the camera sees it under ``shifts`` (in order; by
    default at night under the dimmed lamps)."""
    for image in sorted(src.glob("*/*.jpg")):
        out = dest / image.parent.name / image.name
        out.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(int(hashlib.sha256(image.name.encode()).hexdigest()[:8], 16))
        pixels = cv2.imread(str(image))
        if pixels is None:
            raise PhaseError(f"cannot read {image}: replace or remove it")
        for shift, severity in shifts:
            pixels = apply_shift(pixels, shift, severity, rng)
        cv2.imwrite(str(out), pixels)


def held_out_copy(photos: Path, dest: Path, per_class: int = 60) -> None:
    """Photos of the trainer's test split (never trained on), ``per_class`` of each."""
    for label in ("cat", "dog"):
        (dest / label).mkdir(parents=True, exist_ok=True)
        for photo in held_out_photos(photos, label)[:per_class]:
            shutil.copyfile(photo, dest / label / f"{photo.stem}.jpg")


def _merge(sources: list[Path], dest: Path) -> None:
    """One ImageFolder from several (files prefixed with their source folder's name)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src in sources:
        for image in src.glob("*/*.jpg"):
            (tmp / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, tmp / image.parent.name / f"{src.name}-{image.name}")
    tmp.rename(dest)
