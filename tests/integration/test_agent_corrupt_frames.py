"""Corrupt frames: a real MJPEG video whose middle frames are overwritten with noise
(what a bad sector or a broken encoder gives). The agent must keep classifying the
good frames, with no inference errors and no crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.capture import CameraSource
from edge_agent.config import CameraConfig
from tests.agent_kit import Rig, make_release, running_rig, wait_until, write_video
from tests.conftest import Mosquitto

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def corrupt_frames(path: Path, first: int, last: int) -> int:
    """Overwrite the JPEG data of frames ``first..last`` with noise; keep the AVI index."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    rng = np.random.default_rng(7)
    for k in range(first, last + 1):
        lo, hi = starts[k] + 20, starts[k + 1] - 40
        data[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return last - first + 1


def test_corrupt_frames_do_not_stop_classification(rig: Rig) -> None:
    video = write_video(rig.tmp / "park.avi", frames=40, fps=20)
    broken = corrupt_frames(video, 15, 24)
    rig.server.add(make_release(rig.key, "r1"))
    cameras = [{"camera_id": "gate", "source": str(video), "loop": True, "sample_fps": 10.0,
                "mode": "frame"}]
    agent = rig.start_agent(rig.config(cameras, window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    camera = agent.cameras[0]
    # Several passes over the corrupt stretch, and still classifying after them.
    wait_until(lambda: camera.counters().captured > 60, 60, "frames across the corrupt stretch")

    def classifying() -> list[dict[str, object]] | None:
        windows = [w for w in rig.observer.of("telemetry") if w["release_id"] == "r1"]
        late = windows[-2:]
        return windows if len(windows) >= 4 and all(
            w["cameras"][0]["frames_inferred"] > 0 for w in late  # type: ignore[index]
        ) else None

    windows = wait_until(classifying, 30, "inference after the corrupt frames")
    cams = [w["cameras"][0] for w in windows]  # type: ignore[index]
    errors = sum(int(c["errors"]) for c in cams)  # type: ignore[index]
    states = {str(c["state"]) for c in cams}  # type: ignore[index]
    counters = camera.counters()
    print(f"injected: {broken} of 40 frames overwritten with noise (looping file) -> observed "
          f"{counters.captured} frames captured, {counters.reconnects} reconnects, states "
          f"{sorted(states)}, {errors} inference errors, agent classifying")
    assert errors == 0
    assert "down" not in states


def test_a_corrupt_stretch_is_lost_not_the_end_of_the_file(tmp_path: Path) -> None:
    """The good frames after the damage are read; the damaged ones count as lost."""
    video = write_video(tmp_path / "v.avi", frames=40, fps=20)
    broken = corrupt_frames(video, 15, 24)
    cam = CameraSource(CameraConfig(camera_id="c", source=str(video), realtime=False))
    cam.start()
    try:
        wait_until(lambda: cam.state == "down", 20, "end of file")
    finally:
        cam.stop()
    counters = cam.counters()
    print(f"injected: {broken} of 40 frames overwritten (non-looping file) -> observed "
          f"{counters.captured} captured, {counters.lost} lost, detail {cam.detail!r}")
    assert counters.captured == 40 - broken
    assert counters.lost == broken
    assert cam.detail == "end of file"


def test_a_looped_file_replaced_on_disk_plays_the_new_clip(tmp_path: Path) -> None:
    """An operator swaps a looped clip with a rename (day -> night): the camera plays the
    new file from its next loop, without a restart or a reconnect."""
    video = write_video(tmp_path / "cam.avi", frames=20, fps=20)  # bright
    cam = CameraSource(CameraConfig(camera_id="c", source=str(video), loop=True))
    cam.start()
    try:
        wait_until(lambda: cam.counters().captured >= 5, 20, "first frames")
        dark = write_video(tmp_path / "night.avi", frames=20, fps=20, bright=lambda i: False)
        dark.replace(video)

        def newest_is_dark() -> bool:
            cam.slot.want()
            frame = cam.slot.take()
            return frame is not None and float(frame.image.mean()) < 100

        wait_until(newest_is_dark, 20, "frames of the replaced file")
        assert cam.state == "up"
        assert cam.counters().reconnects == 0
    finally:
        cam.stop()
