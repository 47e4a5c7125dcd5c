"""Park clips for real: MJPG written and decoded by OpenCV, photos cut out with GrabCut,
only held-out photos filmed, and the command line's errors."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from scripts.park_clip import main
from trainer.data import scan_image_folder
from trainer.synth import (
    CutoutCache,
    PhotoPool,
    Scene,
    SceneSpec,
    SceneTruth,
    Schedule,
    cut_out,
    generate_dataset,
    scene_truth,
    write_clip,
)
from trainer.synth.cartoon import animal_layer
from trainer.synth.cutout import central_rect
from trainer.synth.video import read_frames

REAL_PHOTOS = Path(os.environ.get(
    "PARKWATCH_REAL_PHOTOS", Path(__file__).resolve().parents[3] / "shared/data/cats_and_dogs"))
BUSY = Schedule(empty_share=0.2, animals_per_minute=30, distractors_per_minute=6)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ImageFolder: real photos when the shared set is here, else cartoon ones."""
    root = tmp_path_factory.mktemp("photos")
    if (REAL_PHOTOS / "cat").is_dir():
        for label in ("cat", "dog"):
            (root / label).mkdir()
            for src in sorted((REAL_PHOTOS / label).iterdir())[:30]:
                shutil.copyfile(src, root / label / src.name)
    else:
        generate_dataset(root, n_per_class=30, seed=3, size=128)
    return root


def test_the_clip_decodes_to_its_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "clips" / "park.avi"
    busy = Schedule(empty_share=0.2, animals_per_minute=30, distractors_per_minute=0)
    spec = SceneSpec(width=192, height=144, seconds=6, seed=11, schedule=busy,
                     conditions=("day", "night"))
    truth = write_clip(out, spec)
    assert SceneTruth.load(out.with_suffix(".json")) == truth
    frames = list(read_frames(out))
    assert len(frames) == truth.frame_count == 60
    assert all(f.shape == (144, 192, 3) for f in frames)
    assert sorted(p.name for p in out.parent.iterdir()) == ["park.avi", "park.json"]
    assert frames[50].mean() < 0.7 * frames[5].mean()  # the night half
    # The same camera with nobody in view differs from the decoded frames inside the
    # sidecar's boxes, and only by compression outside them.
    empty = Scene(SceneSpec(**{**spec.__dict__, "schedule": Schedule(animals_per_minute=0,
                                                                     distractors_per_minute=0)}))
    inside, outside = [], []
    for k in range(30):
        if not truth.objects(k):
            continue
        diff = np.abs(frames[k].astype(int) - empty.render(k).image.astype(int)).max(axis=2)
        boxed = np.zeros(diff.shape, bool)
        for o in truth.objects(k):
            x, y, w, h = o.box
            boxed[max(0, y - 2):y + h + 2, max(0, x - 2):x + w + 2] = True
        inside.append(diff[boxed].mean())
        outside.append(diff[~boxed].mean())
    assert inside and np.mean(inside) > 3 * np.mean(outside)


def test_only_the_chosen_split_is_filmed(photos: Path, tmp_path: Path) -> None:
    scan = scan_image_folder(photos, seed=0)
    split_of = {r.rel_path: r.split for r in scan.records}
    for split in ("test", "train"):
        spec = SceneSpec(width=160, height=120, seconds=12, seed=2, schedule=BUSY,
                         photos=PhotoPool(photos, split=split), cutout_cache=tmp_path / "cache")
        truth = write_clip(tmp_path / f"{split}.avi", spec)
        filmed = [t for t in truth.tracks if t.kind == "animal"]
        assert len(filmed) >= 4 and truth.photos is not None and truth.photos.split == split
        for t in filmed:
            assert t.source == "photo" and t.photo is not None and t.cutout is not None
            assert split_of[t.photo] == split  # never a photo of another split
            digest = hashlib.sha256((photos / t.photo).read_bytes()).hexdigest()
            assert t.photo_sha256 == digest


def test_a_clip_films_each_labels_photos_from_its_photo_start_on(photos: Path,
                                                                 tmp_path: Path) -> None:
    """Clips that start apart in the pool film other photos (a benchmark over many clips
    sees many photos, not the pool's first few again and again)."""
    pool = PhotoPool(photos, split="train")
    filmed_by_start = {}
    for start in (0, 5):
        spec = SceneSpec(width=160, height=120, seconds=12, seed=2, schedule=BUSY, photos=pool,
                         cutout_cache=tmp_path / "cache", photo_start=start)
        truth = scene_truth(spec)
        for label in ("cat", "dog"):
            order = [p.rel_path for p in pool.photos(label)]
            filmed = {t.photo for t in truth.tracks if t.kind == "animal" and t.label == label}
            n = min(len(filmed), len(order))
            assert n >= 1
            assert filmed == {order[(start + i) % len(order)] for i in range(n)}
            filmed_by_start[start, label] = filmed
    assert filmed_by_start[0, "cat"] != filmed_by_start[5, "cat"]


def test_grabcut_separates_an_animal_from_a_plain_background() -> None:
    layer, alpha = animal_layer("dog", np.random.default_rng(4), 160)
    bg = np.full((200, 200, 3), (40, 160, 60), np.float32)  # grass-green backdrop
    bg[20:180, 20:180] = bg[20:180, 20:180] * (1 - alpha[..., None]) + layer * alpha[..., None]
    truth = np.zeros((200, 200), bool)
    truth[20:180, 20:180] = alpha >= 0.5
    cut = cut_out(bg.astype(np.uint8))
    assert cut.method == "grabcut"
    mine = cut.alpha >= 0.5
    assert (mine & truth).sum() / (mine | truth).sum() > 0.85  # IoU with the real matte


def test_grabcut_falls_back_to_an_ellipse_on_a_featureless_picture() -> None:
    cut = cut_out(np.full((120, 100, 3), 128, np.uint8))
    assert cut.method == "ellipse"
    x, y, w, h = central_rect(120, 100)
    assert cut.alpha[y + h // 2, x + w // 2] > 0.9 and cut.alpha[0, 0] == 0.0


@pytest.mark.skipif(not (REAL_PHOTOS / "cat").is_dir(), reason=f"no real photos at {REAL_PHOTOS}")
def test_grabcut_on_real_photos_is_inside_the_rectangle_and_covers_the_centre() -> None:
    paths = [p for label in ("cat", "dog") for p in sorted((REAL_PHOTOS / label).iterdir())[:6]]
    methods = []
    for path in paths:
        cut = cut_out(np.asarray(cv2.imread(str(path)), np.uint8))
        methods.append(cut.method)
        if cut.method != "grabcut":
            continue
        h, w = cut.alpha.shape
        _, _, rw, rh = central_rect(h, w)
        inside = cut.alpha >= 0.5
        assert inside.sum() < 0.95 * rw * rh and inside[h // 2, w // 2]
    assert methods.count("grabcut") >= len(paths) // 2


def test_cutouts_come_back_from_the_cache_unchanged(photos: Path, tmp_path: Path) -> None:
    photo = sorted((photos / "cat").iterdir())[0]
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    cache = CutoutCache(tmp_path / "cache")
    fresh = cache.get(photo, sha)
    stored = list((tmp_path / "cache").iterdir())
    assert [p.name for p in stored] == [f"{sha}.v1.{fresh.method}.png"]
    moved = tmp_path / "gone.jpg"
    photo.rename(moved)  # the cache answers without the photo
    try:
        again = CutoutCache(tmp_path / "cache").get(photo, sha)
    finally:
        moved.rename(photo)
    assert again.method == fresh.method
    assert np.array_equal(again.bgr, fresh.bgr) and np.array_equal(again.alpha, fresh.alpha)


def test_cli_writes_a_clip_and_says_what_is_in_it(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.avi"
    assert main([str(out), "--seconds", "3", "--width", "128", "--height", "96",
                 "--animals-per-minute", "40", "--conditions", "day,ir"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out} (30 frames, 128x96 @ 10 fps, day>ir)")
    assert len(list(read_frames(out))) == 30


@pytest.mark.parametrize(("args", "says"), [
    (["--photos", "/nonexistent/photos"], "photo folder /nonexistent/photos does not exist"),
    (["--width", "8"], "frame size must be between"),
    (["--empty-share", "1.5"], "--empty-share"),
    (["--conditions", "day,fog"], "unknown condition 'fog'"),
    (["--labels", "cat,horse"], "labels must be"),
])
def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], says: str) -> None:
    assert main([str(tmp_path / "x.avi"), "--seconds", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / "x.json").exists()


def test_cli_rejects_a_photo_folder_without_label_folders(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    (tmp_path / "flat").mkdir()
    assert main([str(tmp_path / "x.avi"), "--seconds", "1", "--photos",
                 str(tmp_path / "flat")]) == 2
    assert "ImageFolder layout" in capsys.readouterr().err
