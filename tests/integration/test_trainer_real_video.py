"""scripts/real_video.py: a real MJPG clip of held-out photos with make_video's sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from scripts.real_video import held_out_photos, main, make_real_video
from scripts.synth_images import generate_dataset
from trainer.data import scan_image_folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    generate_dataset(root, n_per_class=20, seed=2, size=96)
    return root


def test_held_out_photos_are_the_trainers_test_split(photos: Path) -> None:
    scan = scan_image_folder(photos, seed=0)
    expected = {r.path for r in scan.split("test") if r.label == "dog"}
    assert set(held_out_photos(photos, "dog")) == expected and expected


def test_clip_has_the_frames_labels_and_shift_of_its_sidecar(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.avi"
    meta = make_real_video(out, photos, n_segments=3, segment_seconds=0.4, fps=10,
                           size=(96, 72), labels=["cat", "dog"], shift="night",
                           shift_from_segment=2)
    assert json.loads(out.with_suffix(".json").read_text()) == meta
    assert [s["label"] for s in meta["segments"]] == ["cat", "dog", "cat"]
    assert [s["shift"] for s in meta["segments"]] == [None, None, "night"]
    assert meta["segments"][1]["start_frame"] == 4 and meta["frame_count"] == 12
    assert meta["segments"][0]["photo"] != meta["segments"][2]["photo"]  # no repeat yet
    capture = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 12 and frames[0].shape == (72, 96, 3)
    assert not np.array_equal(frames[0], frames[1])  # motion and fresh noise every frame
    assert frames[10].mean() < 0.7 * frames[2].mean()  # night segment is darker


def test_bad_input_gets_a_clear_error(photos: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown label"):
        make_real_video(tmp_path / "x.avi", photos, labels=["horse"])
    assert main([str(tmp_path / "y.avi"), "--photos", str(tmp_path / "none")]) == 2
    assert "ImageFolder layout" in capsys.readouterr().err
