"""The agent off the happy path: each fault is one line that names the fix, in seconds.

Real Mosquitto, a real HTTP server, real OpenCV; the broker and cameras that are "down"
are free ports nothing listens on.
"""

from __future__ import annotations

import getpass
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.camera_config import CameraConfig
from edge_agent.capture import CameraSource
from edge_agent.checks import check_broker
from edge_agent.cli import app
from edge_agent.config import MqttTarget
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import generate_signing_key
from tests.agent_kit import agent_log_lines, release_server, wait_until, write_config, write_video
from tests.conftest import Mosquitto, free_port


def _config(tmp_path: Path, mqtt_url: str, server_url: str, cameras: list[dict[str, str]],
            data_dir: Path | None = None) -> Path:
    return write_config(tmp_path / "agent.toml", mqtt_url=mqtt_url, server_url=server_url,
                        key=generate_signing_key(), data_dir=data_dir or tmp_path / "data",
                        cameras=cameras)


def _lines(output: str) -> dict[str, str]:
    """`  subject: ok|FAILED: line` -> {subject: 'ok: line'}."""
    found = {}
    for line in output.splitlines():
        subject, sep, rest = line.strip().partition(": ")
        if sep and rest.startswith(("ok: ", "FAILED: ")):
            found[subject] = rest
    return found


def test_check_tries_broker_api_and_each_camera(tmp_path: Path, mosquitto: Mosquitto) -> None:
    clip = write_video(tmp_path / "clip.avi", frames=5)
    refused = free_port()
    cameras = [
        {"camera_id": "good", "source": str(clip)},
        {"camera_id": "typo", "source": "rtps://127.0.0.1/stream"},
        {"camera_id": "missing", "source": str(tmp_path / "nope.mp4")},
        {"camera_id": "refused", "source": f"rtsp://user:secret@127.0.0.1:{refused}/s"},
    ]
    with release_server() as server:
        path = _config(tmp_path, mosquitto.url, server.url, cameras)
        result = CliRunner().invoke(app, ["check", "--config", str(path)])
    found = _lines(result.output)
    assert result.exit_code == 1, result.output
    assert found["data folder"].startswith("ok")
    assert found["broker"].startswith("ok: connected")
    assert found["API"].startswith("ok") and "accepts the device token" in found["API"]
    assert found["camera good"].startswith("ok: file") and "64x48" in found["camera good"]
    assert "unknown URL scheme rtps://" in found["camera typo"]
    assert "does not exist" in found["camera missing"]
    assert "refused the connection" in found["camera refused"]
    assert "secret" not in result.output


def test_check_says_what_is_down(tmp_path: Path) -> None:
    dead_broker, dead_api = free_port(), free_port()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = _config(tmp_path, f"mqtt://127.0.0.1:{dead_broker}", f"http://127.0.0.1:{dead_api}",
                   [], data_dir=blocker / "data")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["check", "--config", str(path), "--timeout", "3"])
    took = time.monotonic() - started
    found = _lines(result.output)
    assert result.exit_code == 1
    assert "not writable" in found["data folder"] and "chown" in found["data folder"]
    assert f"127.0.0.1:{dead_broker} refused the connection" in found["broker"]
    assert "mqtt_url" in found["broker"]
    assert "control_plane_url" in found["API"]
    assert "none configured" in found["cameras"]
    print(f"agent check, everything down: {took:.1f}s")


def test_check_names_a_refused_device_token(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with release_server() as server:
        path = _config(tmp_path, mosquitto.url, server.url, [])
        text = path.read_text().replace('api_token = "', 'api_token = "wrong')
        path.write_text(text)
        result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert "refused the device token (401)" in _lines(result.output)["API"]


def test_run_with_an_unwritable_data_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = _config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", "http://127.0.0.1:9",
                   [], data_dir=blocker / "data")
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert "data_dir" in result.output and "Traceback" not in result.output


def test_unreachable_broker_is_logged_within_seconds(tmp_path: Path) -> None:
    port = free_port()
    outbox = Outbox(tmp_path / "outbox.sqlite3", 1000, 10_000_000)
    link = MqttLink("park1-gate", MqttTarget("127.0.0.1", port, tls=False, username=None),
                    outbox, lambda desired: None, "test")
    with agent_log_lines() as lines:
        started = time.monotonic()
        link.start()
        try:
            line = wait_until(lambda: next((x for x in lines if "refused the connection"
                                            in x["msg"]), None), 10, "a connect failure")
            took = time.monotonic() - started
            time.sleep(3)  # paho retries every second or so: the same reason is not repeated
            repeats = [x for x in lines if "refused the connection" in x["msg"]]
        finally:
            link.stop(0)
            outbox.close()
    assert line["level"] == "warning" and f"127.0.0.1:{port}" in line["msg"]
    assert "mqtt_url" in line["msg"]
    assert len(repeats) == 1
    print(f"unreachable broker logged after {took:.1f}s")


@pytest.mark.parametrize(("source", "expected"), [
    ("rtps://127.0.0.1/stream", "unknown URL scheme rtps://"),
    ("{tmp}/missing.mp4", "does not exist"),
    ("rtsp://127.0.0.1:{port}/stream", "refused the connection"),
])
def test_a_camera_that_never_opens_is_logged(tmp_path: Path, source: str,
                                             expected: str) -> None:
    cam = CameraConfig(camera_id="gate",
                       source=source.format(tmp=tmp_path, port=free_port()))
    camera = CameraSource(cam, backoff_initial=0.05, backoff_max=0.1)
    with agent_log_lines() as lines:
        started = time.monotonic()
        camera.start()
        try:
            line = wait_until(lambda: next((x for x in lines if expected in x["msg"]),
                                           None), 10, "the camera's reason")
            took = time.monotonic() - started
            time.sleep(0.5)  # several retries: the reason is logged once
        finally:
            camera.stop()
    assert line["level"] == "warning" and "camera gate" in line["msg"]
    assert len([x for x in lines if expected in x["msg"]]) == 1
    assert expected in (camera.detail or "")
    print(f"camera {source!r}: logged after {took:.1f}s")


def test_a_broker_that_refuses_the_login_is_named(tmp_path: Path) -> None:
    port = free_port()
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "park1-gate", "right"], check=True)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {passwd}\npersistence false\n"
                    f"user {getpass.getuser()}\n")  # root would drop to a user tmp hides from
    broker = Mosquitto(port=port, config=conf, log=tmp_path / "mosquitto.log")
    broker.start()
    outbox = Outbox(tmp_path / "outbox.sqlite3", 1000, 10_000_000)
    target = MqttTarget("127.0.0.1", port, tls=False, username="park1-gate", password="wrong")
    link = MqttLink("park1-gate", target, outbox, lambda desired: None, "test")
    try:
        finding = check_broker(target, "park1-gate", timeout=5)
        assert not finding.ok and "refused the agent" in finding.line
        assert "mqtt_password" in finding.line
        good = MqttTarget("127.0.0.1", port, tls=False, username="park1-gate", password="right")
        assert check_broker(good, "park1-gate", timeout=5).ok
        with agent_log_lines() as lines:
            link.start()
            line = wait_until(lambda: next((x for x in lines if "refused the connection"
                                            in x["msg"]), None), 10, "the refusal")
        assert "mqtt_password" in line["msg"] and line["level"] == "warning"
    finally:
        link.stop(0)
        outbox.close()
        broker.stop()
