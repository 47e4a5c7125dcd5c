"""The story's data: rain images for retraining, a held-out set of day and rain images
never trained on, and each rain camera's clip (its day scene, in the rain)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scripts.phases import PhaseError, console
from scripts.synth_images import generate_dataset
from trainer.synth import SceneSpec, write_clip
from trainer.synth.photos import held_out_photos
from trainer.synth.shifts import apply_shift

SHIFT_SEVERITY = 0.9
WEATHER = "rain"  # what changes on some cameras: the light stays day, the scene not


def story_data(
    workdir: Path, videos: Path, rain_clips: dict[str, SceneSpec], day: Path,
    photos: Path | None = None,
) -> dict[str, Path]:
    """Rain images for retraining, a held-out set (day + rain) and the rain clips: the
    same park scene as each camera's day clip (``rain_clips``: its spec, in the rain).
    With ``photos``, the rain images are rain-shifted copies of the day photos and the
    held-out set is the photos of the trainer's test split (and their rain copies)."""
    out = {"retrain": workdir / "retrain", "holdout": workdir / "holdout"}
    rain, held_day, held_rain = (workdir / n for n in ("rain-train", "holdout-day",
                                                        "holdout-rain"))
    jobs: list[tuple[str, Callable[[], object]]] = []
    if not out["retrain"].exists():
        jobs.append(("rain training images", partial(shifted_copy, day, rain) if photos
                     else partial(generate_dataset, rain, n_per_class=150, seed=3, size=128,
                                  shift=WEATHER, severity=SHIFT_SEVERITY)))
        jobs.append(("retraining set = day + rain", partial(_merge, [day, rain],
                                                             out["retrain"])))
    if not out["holdout"].exists():
        jobs.append(("held-out day images", partial(held_out_copy, photos, held_day) if photos
                     else partial(generate_dataset, held_day, n_per_class=60, seed=7, size=128)))
        jobs.append(("held-out rain images", partial(shifted_copy, held_day, held_rain)))
        jobs.append(("held-out set = day + rain", partial(_merge, [held_day, held_rain],
                                                           out["holdout"])))
    for device_id, spec in rain_clips.items():
        video = rain_clip(videos, device_id)
        if not video.exists():
            jobs.append((f"rain clip {video.name}", partial(write_clip, video, spec)))
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("rain data", total=len(jobs))
        for what, job in jobs:
            progress.update(task, description=what)
            job()
            progress.advance(task)
    return out


def rain_clip(videos: Path, device_id: str) -> Path:
    return videos / f"{device_id}-rain.avi"


def shifted_copy(src: Path, dest: Path, shift: str = "rain") -> None:
    """``src`` (an ImageFolder) as the camera sees it in the rain."""
    for image in sorted(src.glob("*/*.jpg")):
        out = dest / image.parent.name / image.name
        out.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(int(hashlib.sha256(image.name.encode()).hexdigest()[:8], 16))
        pixels = cv2.imread(str(image))
        if pixels is None:
            raise PhaseError(f"cannot read {image}: replace or remove it")
        cv2.imwrite(str(out), apply_shift(pixels, shift, SHIFT_SEVERITY, rng))


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
