"""Wide park cameras, end to end: the animals the control plane counts are the animals that
crossed the lawn.

Real parts all the way: a regions-mode EfficientNet-Lite0 (`parkwatch train`, with an
"other" class) trained on real photos of the trainer's train split; wide 640x480 clips
filmed from cut-outs of the *test* split's photos (never trained on) with people, balls,
leaves and shadows moving too, and a ground-truth sidecar; `parkwatch release create`
and `rollout start`; two `parkwatch agent run` processes in regions mode on a real
Mosquitto. Each camera's per-class animal count (one per track, from the control plane's
park view) must match the sidecar's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.loop import Loop, wait_until
from scripts.make_video import make_video
from tests.integration.test_trainer_lite0 import PHOTOS, copy_subset
from trainer.synth import PhotoPool, SceneSpec, SceneTruth, Schedule, write_clip

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]
CAMERAS = {"park1-lawn": 11, "park2-pond": 12}  # device -> the clip's seed
SECONDS = 45.0
MIN_WIDTH = 0.1  # of the frame: the size the accuracy target is stated for
MIN_FRAMES = 10  # an animal seen for under a second is not a visit


def _visits(truth: SceneTruth) -> dict[str, int]:
    """Animals that were in view, clearly, for a while: what a person would count."""
    seen: dict[int, int] = {}
    for frame in range(truth.frame_count):
        for obj in truth.objects(frame, "animal"):
            if obj.visible_fraction >= 0.5 and obj.box[2] / truth.width >= MIN_WIDTH:
                seen[obj.track_id] = seen.get(obj.track_id, 0) + 1
    counts: dict[str, int] = {}
    for track_id, frames in seen.items():
        if frames >= MIN_FRAMES:
            label = truth.track(track_id).label
            counts[label] = counts.get(label, 0) + 1
    return counts


@pytest.fixture
def window_seconds() -> float:
    return 5.0  # windows long enough to hold whole tracks


def test_each_camera_counts_the_animals_of_its_clip(loop: Loop, tmp_path: Path) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"the real photos are not at {PHOTOS}")
    clips, truths = {}, {}
    pool = PhotoPool(PHOTOS, "test")  # the trainer assigns splits by file hash: held out
    for device_id, seed in CAMERAS.items():
        clip = tmp_path / f"{device_id}.avi"
        truths[device_id] = write_clip(clip, SceneSpec(
            seconds=SECONDS, seed=seed, photos=pool, cutout_cache=tmp_path / "cutouts",
            schedule=Schedule(empty_share=0.3, animals_per_minute=6.0,
                              distractors_per_minute=3.0, max_group=2)))
        clips[device_id] = clip
    warmup = tmp_path / "warmup.avi"
    make_video(warmup, labels=["cat"], n_segments=1, segment_seconds=1.0, fps=10.0, seed=1)

    data = copy_subset(tmp_path / "photos", per_class=100)
    config = tmp_path / "trainer.toml"
    config.write_text('arch = "lite0"\nregions = true\ninput_size = 160\nshifts = []\n'
                      "region_eval_seconds = 0\ncalibration_images = 16\ngolden_count = 1\n")
    loop.start_control_plane()
    loop.train(data, tmp_path / "model", "--config", str(config))

    # First the release, on a close-up warm-up camera; then the park clip, played once from
    # its first frame by an agent that boots with the release already installed.
    for device_id in CAMERAS:
        loop.add_agent(device_id, warmup, sample_fps=5.0)
        loop.start_agent(device_id)
    release_id = loop.release_and_roll_out("petnet", *CAMERAS)
    for device_id, clip in clips.items():
        loop.wait_for_release(device_id, release_id, timeout=240)
        loop.procs[f"agent-{device_id}"].stop()
        loop.set_camera(device_id, clip, sample_fps=8.0, mode="regions", loop=False)
        loop.start_agent(device_id)

    def finished(device_id: str) -> bool:
        device = loop.api(f"/devices/{device_id}")
        cams = (device.get("reported") or {}).get("cameras") or []
        return any(c.get("detail") == "end of file" for c in cams)

    for device_id in CAMERAS:
        wait_until(lambda d=device_id: finished(d), SECONDS * 4, f"{device_id}'s clip to end")
    park = {c["device_id"]: c for c in loop.api("/park", hours=1)["cameras"]}
    report = {}
    for device_id, truth in truths.items():
        expected, counted = _visits(truth), park[device_id]["totals"]
        report[device_id] = {"truth": expected, "counted": counted}
        for label in ("cat", "dog"):
            want, got = expected.get(label, 0), counted.get(label, 0)
            assert abs(got - want) <= max(1, round(0.25 * want)), (device_id, label, report)
        assert "other" not in counted and "unknown" not in counted, report
    print(json.dumps(report, indent=1))
