"""Capture: newest-frame slot semantics, file sources, reconnect states."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.capture import CameraSource, FrameSlot
from edge_agent.config import CameraConfig
from tests.agent_kit import wait_until, write_video


def img(v: int) -> np.ndarray:
    return np.full((2, 2, 3), v, np.uint8)


def test_slot_keeps_only_the_newest_frame() -> None:
    slot = FrameSlot()
    for v in range(5):
        slot.put(img(v), float(v))
    frame = slot.take()
    assert frame is not None and frame.image[0, 0, 0] == 4 and frame.index == 4
    assert slot.take() is None
    assert (slot.captured, slot.skipped, slot.lost) == (5, 4, 0)


def test_frames_replaced_while_inference_waits_are_lost() -> None:
    slot = FrameSlot()
    slot.put(img(1), 1.0)
    slot.want()
    slot.put(img(2), 2.0)  # inference wanted one and was too slow: lost
    slot.put(img(3), 3.0)
    assert slot.take() is not None
    slot.put(img(4), 4.0)  # after take, not wanted: skip again
    slot.put(img(5), 5.0)
    assert (slot.captured, slot.skipped, slot.lost) == (5, 1, 2)


def test_buffers_are_recycled() -> None:
    slot = FrameSlot()
    slot.put(img(1), 1.0)
    frame = slot.take()
    assert frame is not None
    slot.recycle(frame.image)
    assert slot.spare() is frame.image
    assert slot.spare() is None


def test_file_source_reads_every_frame_then_goes_down(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=25)
    cam = CameraSource(CameraConfig(camera_id="c", source=str(video), realtime=False))
    cam.start()
    try:
        wait_until(lambda: cam.state == "down", 10, "end of file")
    finally:
        cam.stop()
    assert cam.counters().captured == 25
    assert cam.detail == "end of file"
    assert cam.source_fps == 20.0


def test_looping_file_keeps_going(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=5)
    cam = CameraSource(CameraConfig(camera_id="c", source=str(video), loop=True, realtime=False))
    cam.start()
    try:
        wait_until(lambda: cam.counters().captured > 12, 10, "three loops")
        assert cam.state == "up"
    finally:
        cam.stop()


def test_missing_source_reconnects_with_backoff(tmp_path: Path) -> None:
    states: list[str] = []
    cam = CameraSource(CameraConfig(camera_id="c", source=str(tmp_path / "later.avi")),
                       on_state=lambda c: states.append(c.state),
                       backoff_initial=0.01, backoff_max=0.05)
    cam.start()
    try:
        wait_until(lambda: cam.counters().reconnects >= 3, 10, "reconnect attempts")
        assert cam.state == "reconnecting" and "does not exist" in (cam.detail or "")
        write_video(tmp_path / "later.avi", frames=3)
        wait_until(lambda: cam.counters().captured == 3, 10, "frames once the file exists")
    finally:
        cam.stop()
    assert "up" in states
