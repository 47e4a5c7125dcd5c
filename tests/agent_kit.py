"""Test kit for the agent tests: signed releases of real ONNX models (``agent_models``),
a release server, agent configs and videos, an MQTT observer, a running agent.

Imported by the ``test_agent_*`` modules (unit and integration);
``tests/unit/test_agent_kit.py`` checks the kit itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent import Agent, load_settings
from protocols import (
    ArtifactRef,
    DesiredState,
    GoldenInput,
    OutputSpec,
    ReleaseManifest,
    SignedManifest,
    encode,
    generate_signing_key,
    public_key_pem,
    sign_desired,
    sign_manifest,
)
from protocols.logs import JsonFormatter
from tests.agent_models import LABELS, SPEC, build_model, golden_images, profile, run_model

T = TypeVar("T")
TOKEN = "device-token-123"


@dataclass
class Release:
    release_id: str
    model: bytes
    signed: SignedManifest
    manifest: ReleaseManifest

    @property
    def sha256(self) -> str:
        return self.manifest.artifact.sha256


def make_release(key: Ed25519PrivateKey, release_id: str, model: bytes | None = None,
                 golden_model: bytes | None = None, version: str = "1",
                 golden_names: tuple[str, ...] = ("dark", "bright")) -> Release:
    """A signed release of ``model``; golden logits come from ``golden_model`` (default: it)."""
    model = model if model is not None else build_model()
    reference = golden_model if golden_model is not None else model
    goldens = []
    for name, rgb in golden_images().items():
        if name not in golden_names:
            continue
        ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))  # PNG stores RGB
        assert ok
        goldens.append(GoldenInput(name=name, image_png_b64=base64.b64encode(png).decode(),
                                   expected_logits=run_model(reference, rgb).tolist(), atol=1e-3))
    manifest = ReleaseManifest(
        release_id=release_id, model_name="tiny", model_version=version, labels=LABELS,
        input=SPEC, outputs=OutputSpec(embedding_dim=3),
        artifact=ArtifactRef(sha256=hashlib.sha256(model).hexdigest(), size_bytes=len(model)),
        reference_profile=profile(), golden_inputs=goldens,
    )
    return Release(release_id, model, sign_manifest(manifest, key), manifest)


# -- the release server ------------------------------------------------------------------------
@dataclass
class ReleaseServer:
    """``/api/v1/releases/{id}/manifest`` and ``/api/v1/artifacts/{sha}`` with Range and auth."""

    manifests: dict[str, bytes] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    port: int = 0
    artifact_delay: float = 0.0  # seconds before each artifact response: a slow link
    artifact_chunk_delay: float = 0.0  # seconds between 64 KiB pieces of an artifact body
    throttle: int = 0  # answer this many next requests 429 (a busy or rate-limiting server)
    retry_after: str = "1"  # the Retry-After of those 429s

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, release: Release, artifact: bytes | None = None) -> None:
        self.manifests[release.release_id] = release.signed.model_dump_json(by_alias=True).encode()
        self.artifacts[release.sha256] = release.model if artifact is None else artifact

    def artifact_requests(self) -> list[tuple[str | None, int]]:
        return [(rng, status) for path, rng, status in self.requests if "/artifacts/" in path]


@contextmanager
def release_server() -> Iterator[ReleaseServer]:
    state = ReleaseServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            state.requests.append((self.path, self.headers.get("Range"), status))
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not state.artifact_chunk_delay or "/artifacts/" not in self.path:
                self.wfile.write(body)
                return
            for start in range(0, len(body), 1 << 16):  # a link that trickles
                try:
                    self.wfile.write(body[start:start + (1 << 16)])
                    self.wfile.flush()
                except OSError:
                    return  # the client went away
                time.sleep(state.artifact_chunk_delay)

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, b'{"detail": "bad token"}')
                return
            if state.throttle > 0:
                state.throttle -= 1
                self._send(429, b'{"detail": "busy"}', {"Retry-After": state.retry_after})
                return
            if m := re.fullmatch(r"/api/v1/releases/([^/]+)/manifest", self.path):
                body = state.manifests.get(m[1])
                self._send(200, body) if body else self._send(404, b'{"detail": "no release"}')
                return
            m = re.fullmatch(r"/api/v1/artifacts/([0-9a-f]{64})", self.path)
            data = state.artifacts.get(m[1]) if m else None
            if data is None:
                self._send(404, b'{"detail": "no artifact"}')
                return
            time.sleep(state.artifact_delay)
            rng = self.headers.get("Range")
            if rng and (r := re.fullmatch(r"bytes=(\d+)-(\d*)", rng)):
                start, end = int(r[1]), int(r[2] or len(data) - 1)
                if start >= len(data):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
                self._send(206, data[start:end + 1],
                           {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
                return
            self._send(200, data, {"Accept-Ranges": "bytes"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- video, config, MQTT -----------------------------------------------------------------------
def write_video(path: Path, frames: int, fps: float = 20.0, size: tuple[int, int] = (64, 48),
                bright: Callable[[int], bool] = lambda i: True) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(frames):
        level = 200 if bright(i) else 30
        img = np.clip(rng.normal(level, 8, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        writer.write(img)
    writer.release()
    return path


def write_config(path: Path, *, mqtt_url: str, server_url: str, key: Ed25519PrivateKey,
                 data_dir: Path, cameras: list[dict[str, Any]], **extra: Any) -> Path:
    config = {
        "device_id": "park1-gate", "control_plane_url": server_url, "api_token": TOKEN,
        "mqtt_url": mqtt_url, "data_dir": str(data_dir),
        "trusted_public_keys": [public_key_pem(key).decode()], "cameras": cameras,
        "intra_op_threads": 1, **extra,
    }
    path.write_text(tomli_w.dumps(config))
    return path


class Observer:
    """A paho client that records everything under the device's topics."""

    def __init__(self, mqtt_url: str, device_id: str = "park1-gate",
                 client_id: str | None = None, key: Ed25519PrivateKey | None = None) -> None:
        self.device_id = device_id
        self.key = key  # signs desired states as the control plane does (agents verify)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        port = int(mqtt_url.rsplit(":", 1)[1])
        if client_id:  # a persistent session: nothing is missed while reconnecting
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=False)
        else:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(
            f"parkwatch/v1/devices/{device_id}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[1]
        with self._lock:
            self.messages.append((kind, json.loads(msg.payload) if msg.payload else {}))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for k, m in self.messages if k == kind]

    def last(self, kind: str) -> dict[str, Any] | None:
        found = self.of(kind)
        return found[-1] if found else None

    def desire(self, revision: int, release_id: str | None, **fields: Any) -> None:
        desired = DesiredState(device_id=self.device_id, revision=revision,
                               release_id=release_id, **fields)
        base = f"parkwatch/v1/devices/{self.device_id}"
        if self.key is not None:
            self.client.publish(f"{base}/desired_signed", encode(sign_desired(desired, self.key)),
                                qos=1, retain=True).wait_for_publish(5)
        plain = desired.model_copy(update={"epoch": 0, "rollback": False})
        self.client.publish(f"{base}/desired", encode(plain), qos=1,
                            retain=True).wait_for_publish(5)

    def clear_desired(self) -> None:
        for kind in ("desired", "desired_signed"):
            topic = f"parkwatch/v1/devices/{self.device_id}/{kind}"
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Rig:
    tmp: Path
    key: Ed25519PrivateKey
    server: ReleaseServer
    observer: Observer
    mqtt_url: str
    agents: list[Agent]

    def config(self, cameras: list[dict[str, Any]], **extra: Any) -> Path:
        return write_config(self.tmp / "agent.toml", mqtt_url=self.mqtt_url,
                            server_url=self.server.url, key=self.key,
                            data_dir=self.tmp / "data", cameras=cameras, **extra)

    def start_agent(self, config: Path) -> Agent:
        agent = Agent(load_settings(config))
        self.agents.append(agent)
        agent.start()
        return agent

    def stop_agent(self, agent: Agent) -> None:
        agent.stop()
        self.agents.remove(agent)

    def reported(self) -> dict[str, Any]:
        return self.observer.last("reported") or {}

    def active(self) -> tuple[str | None, str | None]:
        active = self.reported().get("active") or {}
        return active.get("release_id"), active.get("stage")

    def wait_healthy(self, release_id: str, timeout: float = 30) -> None:
        wait_until(lambda: self.active() == (release_id, "healthy"), timeout,
                   f"{release_id} healthy; last reported {self.reported()}")

    def wait_transition(self, to_release: str, timeout: float = 30) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            t = self.reported().get("last_transition") or {}
            return t if t.get("to_release_id") == to_release else None

        return wait_until(done, timeout, f"a transition to {to_release}")


def make_rig(tmp_path: Path, mqtt_url: str, server: ReleaseServer) -> Rig:
    key = generate_signing_key()
    return Rig(tmp_path, key, server, Observer(mqtt_url, key=key), mqtt_url, [])


def looping_camera(tmp: Path) -> list[dict[str, Any]]:
    video = write_video(tmp / "loop.avi", frames=20, fps=20)
    # The kit's clips fill the frame with one scene: a close-up camera, classified whole.
    return [{"camera_id": "gate", "source": str(video), "loop": True, "sample_fps": 10.0,
             "mode": "frame"}]


@contextmanager
def running_rig(tmp_path: Path, mqtt_url: str) -> Iterator[Rig]:
    """A release server and an observer; agents started through the rig are stopped after."""
    with release_server() as server:
        rig = make_rig(tmp_path, mqtt_url, server)
        try:
            yield rig
        finally:
            for agent in list(rig.agents):
                agent.stop()
            rig.observer.close()


@contextmanager
def agent_log_lines() -> Iterator[list[dict[str, Any]]]:
    """The agent's log lines (INFO and up) as the JSON formatter writes them when logged."""
    lines: list[dict[str, Any]] = []
    formatter = JsonFormatter()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    logger, handler = logging.getLogger("edge_agent"), Collect(logging.INFO)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def wait_until(check: Callable[[], T | None], timeout: float, what: str,
               detail: Callable[[], str] | None = None) -> T:
    """Poll ``check``; on timeout fail naming ``what`` and, if given, ``detail()`` as it
    stands then (not as it stood when the wait began)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f": {detail()}" if detail else ""))
