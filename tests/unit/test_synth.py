"""Synthetic data generators: determinism, layout, shift directions, video ground truth."""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `scripts` is not installed

from scripts import synth_images as si
from scripts.make_video import make_video


def _imgs(n: int = 6, size: int = 96) -> list[np.ndarray]:
    return [si.render_animal(si.LABELS[i % 2], np.random.default_rng(100 + i), size)
            for i in range(n)]


def _luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


def _shifted(shift: str, severity: float) -> list[np.ndarray]:
    return [si.apply_shift(im, shift, severity, np.random.default_rng(i))
            for i, im in enumerate(_imgs())]


def test_render_is_deterministic_bgr_uint8() -> None:
    a = si.render_animal("cat", np.random.default_rng(3), 80)
    b = si.render_animal("cat", np.random.default_rng(3), 80)
    c = si.render_animal("cat", np.random.default_rng(4), 80)
    assert a.shape == (80, 80, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_uses_given_background() -> None:
    white = np.full((50, 70, 3), 255, np.uint8)
    img = si.render_animal("dog", np.random.default_rng(0), 64, background=white)
    assert img.shape == (64, 64, 3)
    # Most of a white background stays bright (the animal and occluders cover the rest).
    assert np.median(_luma(img)) > 180


def test_generate_dataset_layout_and_byte_identical(tmp_path: Path) -> None:
    counts = si.generate_dataset(tmp_path / "a", 3, seed=5, size=64)
    si.generate_dataset(tmp_path / "b", 3, seed=5, size=64)
    si.generate_dataset(tmp_path / "c", 3, seed=6, size=64)
    assert counts == {"cat": 3, "dog": 3}
    for label in si.LABELS:
        names = sorted(p.name for p in (tmp_path / "a" / label).iterdir())
        assert names == [f"{label}_{i:06d}.jpg" for i in range(3)]
        for name in names:
            a = (tmp_path / "a" / label / name).read_bytes()
            assert a == (tmp_path / "b" / label / name).read_bytes()
            assert a != (tmp_path / "c" / label / name).read_bytes()
            img = cv2.imread(str(tmp_path / "a" / label / name))
            assert img is not None and img.shape == (64, 64, 3)


def test_generate_dataset_applies_shift(tmp_path: Path) -> None:
    si.generate_dataset(tmp_path / "day", 2, seed=1, size=64)
    si.generate_dataset(tmp_path / "ir", 2, seed=1, size=64, shift="ir", severity=1.0)
    img = np.asarray(cv2.imread(str(tmp_path / "ir" / "cat" / "cat_000000.jpg")), int)
    day = np.asarray(cv2.imread(str(tmp_path / "day" / "cat" / "cat_000000.jpg")), int)
    assert np.abs(img[..., 0] - img[..., 2]).mean() < 3 < np.abs(day[..., 0] - day[..., 2]).mean()


def test_cli_prints_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert si.main([str(tmp_path), "--n-per-class", "1", "--size", "48"]) == 0
    assert "wrote 1 48x48 images" in capsys.readouterr().out
    assert (tmp_path / "dog" / "dog_000000.jpg").is_file()


@pytest.mark.parametrize("shift", si.SHIFTS)
def test_severity_zero_is_identity(shift: str) -> None:
    img = _imgs(1)[0]
    assert np.array_equal(si.apply_shift(img, shift, 0.0, np.random.default_rng(0)), img)


def test_night_darkens_and_turns_blue() -> None:
    base, half, full = _imgs(), _shifted("night", 0.5), _shifted("night", 1.0)
    means = [np.mean([_luma(i).mean() for i in xs]) for xs in (base, half, full)]
    assert means[0] > means[1] > means[2]
    assert means[2] < 0.5 * means[0]  # low light, not just a colour cast

    def blue_over_red(xs: list[np.ndarray]) -> float:
        return float(np.mean([i[..., 0].mean() / (i[..., 2].mean() + 1) for i in xs]))

    assert blue_over_red(full) > blue_over_red(base) * 1.2


def test_dim_darkens_without_adding_colour() -> None:
    """Less light (a dimmed lamp): darker with severity, and the gain noise is grey, so a
    night frame keeps its colour share (the agent's light rule still reads night)."""
    base, half, full = _imgs(), _shifted("dim", 0.5), _shifted("dim", 1.0)
    means = [np.mean([_luma(i).mean() for i in xs]) for xs in (base, half, full)]
    assert means[0] > means[1] > means[2] and means[2] < 0.4 * means[0]

    def chroma(xs: list[np.ndarray]) -> float:
        return float(np.mean([np.ptp(i.astype(int), axis=2).mean() / (_luma(i).mean() + 1)
                              for i in xs]))

    assert chroma(full) > 0.8 * chroma(base)


def test_ir_removes_colour() -> None:
    def chroma(xs: list[np.ndarray]) -> float:
        return float(np.mean([np.ptp(i.astype(int), axis=2).mean() for i in xs]))

    base, half, full = _imgs(), _shifted("ir", 0.5), _shifted("ir", 1.0)
    assert chroma(full) == 0.0
    assert chroma(base) > chroma(half) > 0.0


def test_blur_removes_detail() -> None:
    def sharpness(xs: list[np.ndarray]) -> float:
        return float(np.mean([cv2.Laplacian(_luma(i), cv2.CV_64F).var() for i in xs]))

    assert sharpness(_imgs()) > 2 * sharpness(_shifted("blur", 0.5)) > 2 * sharpness(
        _shifted("blur", 1.0))


def test_rain_adds_bright_streaks_and_haze() -> None:
    base = _imgs()
    for sev in (0.5, 1.0):
        rained = _shifted("rain", sev)
        pairs = zip(rained, base, strict=True)
        brighter = np.mean([(_luma(r) - _luma(b) > 60).mean() for r, b in pairs])
        assert brighter > 0.002  # streak pixels
        assert np.mean([_luma(r).std() for r in rained]) < np.mean([_luma(b).std() for b in base])


def test_tilt_rotates_horizontal_structure() -> None:
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[(np.arange(96) // 8) % 2 == 0] = 255
    gx0 = np.abs(cv2.Sobel(_luma(stripes), cv2.CV_64F, 1, 0)).mean()
    tilted = si.apply_shift(stripes, "tilt", 1.0, np.random.default_rng(0))
    gx1 = np.abs(cv2.Sobel(_luma(tilted), cv2.CV_64F, 1, 0)).mean()
    assert tilted.shape == stripes.shape
    assert gx0 == 0.0 and gx1 > 20


def test_dusk_dims_and_warms() -> None:
    base, dusk = _imgs(), _shifted("dusk", 1.0)
    assert np.mean([_luma(i).mean() for i in dusk]) < 0.7 * np.mean([_luma(i).mean() for i in base])

    def red_over_blue(xs: list[np.ndarray]) -> float:
        return float(np.mean([i[..., 2].mean() / (i[..., 0].mean() + 1) for i in xs]))

    assert red_over_blue(dusk) > 1.2 * red_over_blue(base)


def test_heavy_jpeg_loses_fine_detail_in_blocks() -> None:
    def block_edges(img: np.ndarray) -> float:
        """Mean jump across 8-pixel block borders over the mean jump elsewhere."""
        jumps = np.abs(np.diff(_luma(img), axis=1))
        on = jumps[:, 7::8].mean()
        return float(on / (np.delete(jumps, np.s_[7::8], axis=1).mean() + 1e-6))

    base, coarse = _imgs(), _shifted("jpeg", 1.0)
    assert np.mean([block_edges(i) for i in coarse]) > 1.5 * np.mean(
        [block_edges(i) for i in base])
    assert all(c.shape == b.shape for c, b in zip(coarse, base, strict=True))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: si.render_animal("horse", np.random.default_rng(0)), "unknown label 'horse'"),
        (lambda: si.apply_shift(np.zeros((8, 8, 3), np.uint8), "fog", 1.0,
                                np.random.default_rng(0)), "unknown shift 'fog'"),
        (lambda: si.apply_shift(np.zeros((8, 8, 3), np.uint8), "night", 1.5,
                                np.random.default_rng(0)), "severity"),
        (lambda: si.apply_shift(np.zeros((8, 8), np.uint8), "night", 1.0,
                                np.random.default_rng(0)), "HxWx3 uint8"),
        (lambda: si.generate_dataset(Path("unused"), 1, shift="snow"), "unknown shift"),
    ],
)
def test_bad_arguments_fail_clearly(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def _read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_video_decodes_to_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "clip.avi"
    meta = make_video(out, n_segments=4, segment_seconds=0.5, fps=8, size=(160, 120), seed=2,
                      shift="night", shift_from_segment=2)
    assert json.loads(out.with_suffix(".json").read_text()) == meta
    frames = _read_all(out)
    assert len(frames) == meta["frame_count"] == 16
    assert all(f.shape == (120, 160, 3) for f in frames)
    assert (meta["width"], meta["height"], meta["fps"]) == (160, 120, 8)
    segs = meta["segments"]
    assert [s["label"] for s in segs] == ["cat", "dog", "cat", "dog"]
    assert [s["shift"] for s in segs] == [None, None, "night", "night"]
    # Segments tile [0, frame_count) with no gap or overlap (end_frame is exclusive).
    assert segs[0]["start_frame"] == 0 and segs[-1]["end_frame"] == meta["frame_count"]
    assert all(a["end_frame"] == b["start_frame"] for a, b in pairwise(segs))
    day = np.mean([_luma(f).mean() for f in frames[: segs[2]["start_frame"]]])
    night = np.mean([_luma(f).mean() for f in frames[segs[2]["start_frame"]:]])
    assert night < 0.7 * day
    # Frames move and carry fresh noise: consecutive frames are never identical.
    assert all(not np.array_equal(a, b) for a, b in pairwise(frames))


def test_video_is_deterministic_and_follows_labels(tmp_path: Path) -> None:
    kw = {"n_segments": 3, "segment_seconds": 0.25, "fps": 8, "size": (96, 64), "seed": 9,
          "labels": ["dog"]}
    meta = make_video(tmp_path / "a.avi", **kw)  # type: ignore[arg-type]
    make_video(tmp_path / "b.avi", **kw)  # type: ignore[arg-type]
    assert [s["label"] for s in meta["segments"]] == ["dog", "dog", "dog"]
    a, b = _read_all(tmp_path / "a.avi"), _read_all(tmp_path / "b.avi")
    assert len(a) == len(b) == meta["frame_count"]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_video_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown label 'cow'"):
        make_video(tmp_path / "v.avi", labels=["cat", "cow"])
    with pytest.raises(ValueError, match="unknown shift 'snow'"):
        make_video(tmp_path / "v.avi", shift="snow")
    with pytest.raises(RuntimeError, match="could not open"):
        make_video(tmp_path / "v.not-a-container", n_segments=1, segment_seconds=0.1)


def test_clip_and_image_clis_answer_bad_input_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scripts import make_video as mv

    assert mv.main([str(tmp_path / "v.avi"), "--labels", "cat,cow"]) == 2
    assert si.main([str(tmp_path / "imgs"), "--n-per-class", "-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: unknown label 'cow'; expected one of cat, dog",
                   "error: n_per_class must be >= 0, got -1"]
