"""What stands between this agent and a working day, each found in seconds and said in
one line that names the fix: the data folder, the broker, the control plane, each camera.

``agent check`` runs them all; the daemon runs the data-folder check before it opens
anything, and capture asks :func:`source_problem` why a camera did not open.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocols.reach import explain_connect_error, probe_tcp
from protocols.urls import redact_url

from .camera_config import CameraConfig
from .config import AgentSettings, MqttTarget

# Schemes FFmpeg opens for a network camera; anything else is most likely a typo.
STREAM_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80,
                "https": 443, "srt": None, "udp": None, "tcp": None, "rtp": None}


@dataclass(frozen=True)
class Finding:
    subject: str  # "broker", "camera gate" ...
    ok: bool
    line: str


def data_dir_problem(path: Path) -> str | None:
    """None when the agent can create ``path`` and write a file in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return (f"data_dir {path} is not writable by user {_user()} ({exc.strerror or exc}): "
                f"create it and give that user ownership (chown), or set data_dir to a "
                "writable folder")
    return None


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):  # pragma: no cover - not POSIX, or no passwd entry
        return str(os.geteuid())


def source_problem(camera: CameraConfig, probe_seconds: float = 0.0) -> str | None:
    """Why ``camera``'s source cannot open, when that can be told without opening it:
    a missing or unreadable file, a missing device, an unknown URL scheme, a host that
    refuses or does not answer (probed only when ``probe_seconds`` > 0)."""
    source = camera.source
    if camera.kind == "file":
        path = Path(source)
        if not path.exists():
            return f"file {path} does not exist: fix the camera's source"
        if not os.access(path, os.R_OK):
            return f"file {path} is not readable by user {_user()}: fix its permissions"
        return None
    if camera.kind == "device":
        device = Path(f"/dev/video{source}")
        if not device.exists():
            return f"no video device {device}: plug the camera in or fix the camera's source"
        return None
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme not in STREAM_PORTS:
        known = ", ".join(f"{s}://" for s in ("rtsp", "rtsps", "http", "https", "rtmp"))
        return f"unknown URL scheme {scheme}:// in {redact_url(source)}: use one of {known}"
    if not parts.hostname:
        return f"URL {redact_url(source)} has no host"
    try:
        port = parts.port or STREAM_PORTS[scheme]
    except ValueError:
        return f"URL {redact_url(source)} has an invalid port"
    if probe_seconds > 0 and port is not None and scheme not in ("udp", "rtp"):
        err = probe_tcp(parts.hostname, port, probe_seconds)
        if err is not None:
            return explain_connect_error(err, f"camera {camera.camera_id}", parts.hostname,
                                         port, "the camera's source")
    return None


def check_camera(camera: CameraConfig) -> Finding:
    """Open the camera and read one frame (within the camera's open timeout)."""
    subject = f"camera {camera.camera_id}"
    shown = f"{camera.kind} {redact_url(camera.source)}"
    problem = source_problem(camera, probe_seconds=min(3.0, camera.open_timeout_seconds))
    if problem is not None:
        return Finding(subject, False, f"{shown}: {problem}")
    started = time.monotonic()
    if camera.kind == "device":
        cap = cv2.VideoCapture(int(camera.source))
    elif camera.kind == "url":
        timeout_ms = int(camera.open_timeout_seconds * 1000)
        cap = cv2.VideoCapture(camera.source, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            timeout_ms])
    else:
        cap = cv2.VideoCapture(camera.source)
    try:
        ok, image = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    if not ok or image is None:
        return Finding(subject, False, f"{shown}: opened nothing readable: check the path "
                       "or stream name, the credentials in the URL and the codec")
    height, width = image.shape[:2]
    return Finding(subject, True, f"{shown}: read a {width}x{height} frame in "
                   f"{time.monotonic() - started:.1f}s")


def check_broker(target: MqttTarget, device_id: str, timeout: float) -> Finding:
    """Connect with the agent's credentials and TLS settings, then disconnect."""
    answer: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        answer["reason"] = reason
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"parkwatch-check-{device_id}-{uuid.uuid4().hex[:6]}")
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set(ca_certs=str(target.ca_file) if target.ca_file else None,
                       certfile=str(target.client_cert) if target.client_cert else None,
                       keyfile=str(target.client_key) if target.client_key else None)
    client.on_connect = on_connect
    where = f"{target.host}:{target.port}"
    try:
        client.connect(target.host, target.port, keepalive=10)
    except (OSError, ValueError) as exc:
        return Finding("broker", False, explain_connect_error(
            exc, "the broker", target.host, target.port, "mqtt_url"))
    client.loop_start()
    try:
        if not done.wait(timeout):
            return Finding("broker", False, f"the broker at {where} accepted TCP but sent no "
                           f"CONNACK in {timeout:g}s: is that port MQTT?")
    finally:
        client.disconnect()
        client.loop_stop()
    reason = answer["reason"]
    if reason.is_failure:
        return Finding("broker", False, f"the broker at {where} refused the agent: {reason}; "
                       "check mqtt_username / mqtt_password and the broker's password file")
    return Finding("broker", True, f"connected to {where} as "
                   f"{target.username or 'anonymous'}")


def check_api(base_url: str, token: str, timeout: float) -> Finding:
    """Ask the control plane for a manifest that cannot exist: 404 means the API answers
    and the device token is accepted."""
    url = f"{base_url.rstrip('/')}/api/v1/releases/agent-check-{uuid.uuid4().hex[:8]}/manifest"
    parts = urlsplit(base_url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return Finding("API", True, f"{base_url} answers and accepts the device token")
        if exc.code in (401, 403):
            return Finding("API", False, f"{base_url} refused the device token ({exc.code}): "
                           "set api_token to a token from `parkwatch devices create`")
        return Finding("API", False, f"{base_url} answered {exc.code}: is control_plane_url "
                       "the parkwatch control plane?")
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else OSError(exc.reason)
        return Finding("API", False, explain_connect_error(
            reason, "the control plane", host, port, "control_plane_url"))
    except (TimeoutError, OSError) as exc:
        return Finding("API", False, explain_connect_error(
            exc, "the control plane", host, port, "control_plane_url"))
    return Finding("API", False, f"{base_url} answered 200 for a release that cannot exist: "
                   "is control_plane_url the parkwatch control plane?")


def run_checks(settings: AgentSettings, timeout: float) -> list[Finding]:
    """Every check, in the order an operator would fix them."""
    problem = data_dir_problem(settings.data_dir)
    findings = [Finding("data folder", problem is None,
                        problem or f"{settings.data_dir} is writable")]
    findings.append(check_broker(settings.mqtt, settings.device_id, timeout))
    findings.append(check_api(settings.control_plane_url,
                              settings.api_token.get_secret_value(), timeout))
    if not settings.cameras:
        findings.append(Finding("cameras", False, "none configured, so the agent would "
                                "classify nothing: add a [[cameras]] table"))
    findings.extend(check_camera(c) for c in settings.cameras)
    return findings
