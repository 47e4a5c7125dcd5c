"""Camera faults with real streams: an RTSP stream published by ffmpeg (through the
Debian ``rtsp-server-perl`` relay) that is killed and restarted, and an HTTP MJPEG
stream that freezes mid-connection so ``read()`` blocks (the read watchdog)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.agent_kit import Rig, make_release, running_rig, wait_until, write_video
from tests.conftest import Mosquitto, free_port, wait_for_port

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow, pytest.mark.fault]


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: apt-get install -y {package}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(5)


@dataclass
class RtspCamera:
    """``rtsp-server-perl`` relays what an ``ffmpeg`` publisher sends to RTSP clients."""

    video: Path
    log: Path
    client_port: int = field(default_factory=free_port)
    source_port: int = field(default_factory=free_port)
    relay: subprocess.Popen[bytes] | None = None
    publisher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.client_port}/cam"

    def start_relay(self) -> None:
        with self.log.open("ab") as log:
            self.relay = subprocess.Popen(
                ["rtsp-server-perl", "-c", str(self.client_port), "-s", str(self.source_port),
                 "--rtp_start_port", str(20000 + self.client_port % 20000)],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.client_port)
        wait_for_port(self.source_port)

    def start_publisher(self) -> None:
        """The camera: ffmpeg streaming the file in a loop, in real time, over RTSP."""
        with self.log.open("ab") as log:
            self.publisher = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                 "-i", str(self.video), "-c:v", "mpeg4", "-f", "rtsp",
                 f"rtsp://127.0.0.1:{self.source_port}/cam"],
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """Power-cycle the camera: SIGKILL the publisher and the relay (the relay keeps a
        dead publisher's mount and refuses a new one, so both go)."""
        _stop(self.publisher)
        _stop(self.relay)
        self.publisher = self.relay = None

    def start(self) -> None:
        self.start_relay()
        self.start_publisher()

    def close(self) -> None:
        self.kill()


@pytest.fixture
def rtsp_camera(tmp_path: Path) -> Iterator[RtspCamera]:
    _need("ffmpeg", "ffmpeg")
    _need("rtsp-server-perl", "rtsp-server-perl")
    cam = RtspCamera(write_video(tmp_path / "cam.avi", frames=40, fps=20), tmp_path / "rtsp.log")
    cam.start()
    try:
        yield cam
    finally:
        cam.close()


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def camera_states(rig: Rig, camera_id: str = "gate") -> list[str]:
    """Every state the agent reported for one camera, in order, without repeats."""
    states: list[str] = []
    for report in rig.observer.of("reported"):
        for cam in report.get("cameras", []):
            if cam["camera_id"] == camera_id and (not states or states[-1] != cam["state"]):
                states.append(cam["state"])
    return states


def totals(rig: Rig, key: str, camera_id: str | None = None) -> int:
    return sum(c[key] for w in rig.observer.of("telemetry") for c in w["cameras"]
               if camera_id in (None, c["camera_id"]))


def camera(window: dict[str, Any], camera_id: str) -> dict[str, Any]:
    return next(c for c in window["cameras"] if c["camera_id"] == camera_id)


def test_rtsp_camera_killed_and_restarted_reconnects(
        rig: Rig, rtsp_camera: RtspCamera, monkeypatch: pytest.MonkeyPatch) -> None:
    """The RTSP camera goes away twice and comes back; the agent's other camera (a
    looped file) keeps being classified while it is away."""
    # rtsp-server-perl relays over UDP only (OpenCV asks for TCP interleaving by default).
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")
    rig.server.add(make_release(rig.key, "r1"))
    lawn = write_video(rig.tmp / "lawn.avi", frames=40, fps=20)
    cameras = [{"camera_id": "gate", "source": rtsp_camera.url, "sample_fps": 10.0,
                "stall_seconds": 1.0, "mode": "frame"},
               {"camera_id": "lawn", "source": str(lawn), "loop": True, "sample_fps": 10.0,
                "mode": "frame"}]
    agent = rig.start_agent(rig.config(cameras, window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1", timeout=60)
    wait_until(lambda: "up" in camera_states(rig), 30, "the RTSP camera up")

    for outage in range(2):
        rtsp_camera.kill()
        wait_until(lambda: camera_states(rig)[-1] == "reconnecting", 30,
                   f"camera reconnecting after publisher kill {outage}")
        seen = len(rig.observer.of("telemetry"))
        # Stay away until a window shows the other camera classified meanwhile (and
        # several reopen attempts with backoff have failed).
        wait_until(lambda n=seen: any(
            camera(w, "gate")["state"] == "reconnecting"
            and camera(w, "lawn")["frames_inferred"] > 0
            for w in rig.observer.of("telemetry")[n:]), 15,
            f"a window with the lawn camera classified during outage {outage}")
        before = agent.cameras[0].counters().captured
        rtsp_camera.start()
        wait_until(lambda b=before: camera_states(rig)[-1] == "up"
                   and agent.cameras[0].counters().captured > b + 10, 60,
                   f"camera up again after restart {outage}; states {camera_states(rig)}")

    counters = agent.cameras[0].counters()
    assert counters.reconnects >= 2
    wait_until(lambda: totals(rig, "reconnects", "gate") >= 2, 15, "reconnects in telemetry")
    # Still classifying: windows after the outages infer frames with the model, no errors.
    wait_until(lambda: any(w["release_id"] == "r1" and camera(w, "gate")["frames_inferred"] > 0
                           and camera(w, "gate")["state"] == "up"
                           for w in rig.observer.of("telemetry")[-3:]), 15, "inference again")
    assert totals(rig, "errors") == 0
    events = [e for e in rig.observer.of("events") if e["kind"] == "camera_state"]
    assert any(e["detail"].startswith("reconnecting") for e in events)
    print(f"injected: RTSP publisher killed and restarted twice -> observed "
          f"{counters.reconnects} reconnects, states {camera_states(rig)[-6:]}, "
          f"{totals(rig, 'errors')} inference errors")


# -- a stream whose read() blocks --------------------------------------------------------------
@dataclass
class FreezingMjpeg:
    """An HTTP MJPEG camera; ``freeze()`` makes every open connection stop sending, forever,
    while keeping it open (what a wedged camera or NAT does); new connections work."""

    port: int = 0
    connections: int = 0
    frozen_below: int = 0  # connections with a lower index stall
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def freeze(self) -> None:
        self.frozen_below = self.connections


@pytest.fixture
def mjpeg_camera() -> Iterator[FreezingMjpeg]:
    state = FreezingMjpeg()
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(10):
        img = np.clip(rng.normal(200, 8, (48, 64, 3)), 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", img)
        assert ok
        frames.append(jpeg.tobytes())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            index = state.connections
            state.connections += 1
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
            self.end_headers()
            i = 0
            try:
                while not state.stop.is_set():
                    if index < state.frozen_below:
                        state.stop.wait(0.1)  # hold the connection, send nothing
                        continue
                    jpeg = frames[i % len(frames)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                     + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                     + jpeg + b"\r\n")
                    self.wfile.flush()
                    i += 1
                    time.sleep(0.05)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


def test_blocked_read_is_caught_by_the_watchdog_and_recovered(
        rig: Rig, mjpeg_camera: FreezingMjpeg) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    cameras = [{"camera_id": "gate", "source": mjpeg_camera.url, "sample_fps": 10.0,
                "stall_seconds": 1.0, "mode": "frame"}]
    agent = rig.start_agent(rig.config(cameras, window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1", timeout=60)
    camera = agent.cameras[0]
    wait_until(lambda: camera.counters().captured > 10, 30, "frames from the MJPEG camera")
    assert camera.counters().stalls == 0

    mjpeg_camera.freeze()
    stalled = wait_until(lambda: camera.counters().stalls >= 1 or None, 15,
                         "the watchdog to see the blocked read()")
    assert stalled
    before = camera.counters().captured
    wait_until(lambda: camera.state == "up" and camera.counters().captured > before + 10, 30,
               f"frames from a fresh connection; state {camera.state} {camera.detail}")
    assert mjpeg_camera.connections >= 2
    assert "reconnecting" in camera_states(rig)
    wait_until(lambda: totals(rig, "stalls") >= 1, 15, "the stall in telemetry")
    # The abandoned capture returns (FFmpeg's own read timeout) and its thread ends.
    wait_until(lambda: camera.abandoned_threads == 0, 30, "the abandoned capture thread to end")
    assert camera.counters().stalls == 1, "one stall, counted once"
    print(f"injected: MJPEG stream frozen mid-read -> observed {camera.counters().stalls} "
          f"stall, {mjpeg_camera.connections} connections, state {camera.state}")
