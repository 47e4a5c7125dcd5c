"""The whole loop with real processes.

synthetic data -> `parkwatch train` (registers) -> `parkwatch release create`
(signed) -> `parkwatch rollout start` (MQTT, real Mosquitto) -> two
`parkwatch agent run` processes download, verify, classify their videos and
publish telemetry -> the control plane stores it -> the API returns it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.loop import Loop, class_counts, wait_until
from scripts.make_video import make_video
from scripts.synth_images import generate_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

# Unbalanced videos: a constant or random classifier cannot match both.
VIDEOS = {
    "park1-gate": ["cat", "cat", "dog", "cat", "cat", "cat"],
    "park2-pond": ["dog", "dog", "cat", "dog", "dog", "dog"],
}


def test_train_release_rollout_classify_report(loop: Loop, tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_dataset(data, n_per_class=400, seed=1, size=128)
    truth = {}
    for i, (device_id, labels) in enumerate(VIDEOS.items()):
        meta = make_video(tmp_path / f"{device_id}.avi", labels=labels, n_segments=len(labels),
                          segment_seconds=2.0, fps=10.0, seed=100 + i)
        frames = {lb: 0 for lb in ("cat", "dog")}
        for seg in meta["segments"]:
            frames[seg["label"]] += seg["end_frame"] - seg["start_frame"]
        truth[device_id] = frames

    loop.start_control_plane()
    loop.train(data, tmp_path / "model", "--epochs", "25")
    versions = loop.api("/models/petnet/versions")["items"]
    assert [v["version"] for v in versions] == ["1"]

    for device_id in VIDEOS:
        loop.add_agent(device_id, tmp_path / f"{device_id}.avi", sample_fps=5.0)
        loop.start_agent(device_id)
    release_id = loop.release_and_roll_out("petnet", *VIDEOS)

    for device_id in VIDEOS:
        device = loop.wait_for_release(device_id, release_id, timeout=180)
        assert device["online"] is True

    # Enough classified frames for the class mix to mean something (the videos loop).
    def enough(device_id: str) -> list[dict[str, object]] | None:
        windows = loop.windows(device_id, release_id)
        return windows if sum(class_counts(windows).values()) >= 120 else None

    shares: dict[str, float] = {}
    for device_id, frames in truth.items():
        windows = wait_until(lambda d=device_id: enough(d), 240, f"120 frames from {device_id}")
        seqs = [w["seq"] for w in windows]
        assert len(seqs) == len(set(seqs)), "a window was stored twice"
        counts = class_counts(windows)
        majority = max(frames, key=lambda lb: frames[lb])
        share = counts.get(majority, 0) / sum(counts.values())
        expected = frames[majority] / sum(frames.values())
        shares[device_id] = counts.get("dog", 0) / sum(counts.values())
        print(f"{device_id}: predicted {counts}, ground truth frames {frames}")
        # Ground truth is a 5/6 majority: the model must get each video's majority right.
        # (This small model, trained on stills, finds 0.55-0.58 of the pond's dog frames
        # in every run; the separation below is the stronger check.)
        assert share > 0.5, f"{device_id}: {majority} share {share:.2f} vs truth {expected:.2f}"
        for w in windows:
            assert w["window"]["model_version"] == "1"
            assert w["window"]["cameras"][0]["frames_inferred"] >= 0
    # A constant or random classifier gives both parks the same dog share; truth differs by
    # 0.67 (5/6 - 1/6). Requiring half of that means per-frame accuracy above ~0.75.
    separation = shares["park2-pond"] - shares["park1-gate"]
    assert separation > 0.33, f"dog share pond - gate = {separation:.2f}, truth 0.67"

    events = loop.api("/events", device="park1-gate", limit=1000)["items"]
    kinds = {e["kind"] for e in events}
    assert {"download_verified", "activated"} <= kinds
