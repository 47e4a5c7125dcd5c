"""Run the parkwatch loop with real processes: control plane, trainer, agents.

Used by `parkwatch demo` and by the end-to-end tests, so what the demo shows is
what the tests check. Every process is started through the `parkwatch` CLI,
exactly as an operator would, and stopped by its PID.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
CLI = [sys.executable, "-m", "parkwatch_cli"]
REPO_ROOT = Path(__file__).resolve().parents[1]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port nothing is bound to, for a server this process or its children start.

    Picked below the kernel's ephemeral range: a port the kernel handed out from that
    range can become the local end of any outgoing connection between the pick and the
    server's bind (a control plane failed to start with "address already in use" while
    nothing listened there).
    """
    high = _ephemeral_low() - 1
    low = max(1024, high - 12000)
    for _ in range(500):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # that range is full: let the kernel pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5,
    on_wait: Callable[[float], None] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``.
    ``on_wait`` gets the seconds left after each miss (e.g. to update a spinner)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            last_error = exc
        if on_wait is not None:
            on_wait(deadline - time.monotonic())
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})"
    )


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._stop_group()
        return self.popen.returncode

    def _stop_group(self) -> None:
        """Stop what the process left behind in its own process group (spawn gives each
        one a new session), e.g. the trainer a killed `parkwatch worker` was running."""
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return  # the group is empty: nothing left behind
        time.sleep(1)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class Loop:
    """One parkwatch installation in ``workdir``: a control plane and its agents."""

    workdir: Path
    mqtt_url: str | None = None  # None: the control plane's embedded broker
    window_seconds: float = 2.0
    port: int = field(default_factory=free_port)
    broker_port: int = field(default_factory=free_port)
    procs: dict[str, Proc] = field(default_factory=dict)
    config: Path | None = None  # TOML for `serve` and `worker` ([drift], [worker], ...)
    agent_env: dict[str, str] = field(default_factory=dict)  # e.g. PARKWATCH_AGENT_...
    trainer_env: dict[str, str] = field(default_factory=dict)  # `train` and the worker's

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)

    # -- environment -------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cp_dir(self) -> Path:
        return self.workdir / "control-plane"

    @property
    def broker_url(self) -> str:
        return self.mqtt_url or f"mqtt://127.0.0.1:{self.broker_port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
        env.update(
            PARKWATCH_DATA_DIR=str(self.cp_dir),
            PARKWATCH_PORT=str(self.port),
            PARKWATCH_API_URL=self.api_url,
            PARKWATCH_EMBEDDED_BROKER_PORT=str(self.broker_port),
            PYTHONUNBUFFERED="1",
        )
        if self.mqtt_url:
            env["PARKWATCH_MQTT_URL"] = self.mqtt_url
        token = self.cp_dir / "admin.token"
        if token.exists():
            env["PARKWATCH_API_TOKEN"] = token.read_text().strip()
        env.update(extra)
        return env

    # -- processes ---------------------------------------------------------------
    def cli(
        self, *args: str, timeout: float = 600, extra_env: Mapping[str, str] | None = None
    ) -> str:
        """Run one `parkwatch` command to completion; return stdout, raise with its output."""
        done = subprocess.run(
            [*CLI, *args], env=self.env(**(extra_env or {})), cwd=REPO_ROOT,
            capture_output=True,
            text=True, timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"parkwatch {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json", timeout=600))

    def spawn(self, name: str, *args: str, **env: str) -> Proc:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("ab") as fh:
            popen = subprocess.Popen(
                [*CLI, *args], env=self.env(**env), cwd=REPO_ROOT, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        # Agents first, so they can flush to a broker that is still up.
        for name in sorted(self.procs, key=lambda n: n == "control-plane"):
            self.procs[name].stop()

    # -- the loop, step by step --------------------------------------------------
    def start_control_plane(self, timeout: float = 60) -> None:
        proc = self.spawn("control-plane", "serve", *self._config_args())

        def healthy() -> bool:
            if not proc.alive():
                raise RuntimeError(f"control plane exited:\n{proc.tail()}")
            return httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200

        wait_until(healthy, timeout, "the control plane's /healthz")
        wait_until(lambda: (self.cp_dir / "admin.token").exists(), 10, "the admin token")

    def _config_args(self) -> list[str]:
        return ["--config", str(self.config)] if self.config is not None else []

    def start_worker(self) -> Proc:
        """`parkwatch worker` (continuous training) beside the control plane."""
        return self.spawn("worker", "worker", *self._config_args(), **self.trainer_env)

    def camera_clip(self, device_id: str) -> Path:
        """The looping file the agent's camera plays (a copy, so it can be swapped)."""
        return self.workdir / "cameras" / f"{device_id}.avi"

    def switch_camera(self, device_id: str, video: Path) -> None:
        """Swap the camera's clip for ``video`` with a rename: the running agent plays it
        from the clip's next loop (no restart), as a real camera's scene would change."""
        clip = self.camera_clip(device_id)
        tmp = clip.with_suffix(".swap")
        shutil.copyfile(video, tmp)
        tmp.replace(clip)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        token = (self.cp_dir / "admin.token").read_text().strip()
        resp = httpx.post(
            f"{self.api_url}/api/v1{path}", json=body or {},
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        )
        resp.raise_for_status()
        return resp.json()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        token = (self.cp_dir / "admin.token").read_text().strip()
        resp = httpx.request(method, f"{self.api_url}/api/v1{path}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw)
        resp.raise_for_status()
        return resp

    def api(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params).json()

    def get_bytes(self, path: str) -> bytes:
        """A body as it is, e.g. a sample's JPEG (``/artifacts/<sha256>``)."""
        return self._request("GET", path).content

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("PATCH", path, json=body).json()

    def train(self, data_dir: Path, out_dir: Path, *extra: str) -> None:
        self.cli("train", "--data", str(data_dir), "--out", str(out_dir), "--api-url",
                 self.api_url, *extra, extra_env=self.trainer_env)

    def add_agent(
        self, device_id: str, video: Path, sample_fps: float = 5.0,
        motion_gate: bool | None = None, mode: str = "frame",
        camera: dict[str, bool] | None = None,
    ) -> Path:
        """Provision a device and write its config with one camera looping a copy of
        ``video`` (``motion_gate=False``: classify every sampled frame, even a still scene;
        ``camera``: more keys of its camera table)."""
        config = self.workdir / "agents" / f"{device_id}.toml"
        config.parent.mkdir(exist_ok=True)
        self.cli("devices", "create", device_id, "--out", str(config))
        text = config.read_text()
        config.write_text(_set_toml_key(text, "data_dir", str(self.workdir / "agents" / device_id)))
        # mode "frame": a close-up camera (one animal fills the clip); "regions": a wide one.
        return self.set_camera(device_id, video, sample_fps, motion_gate, mode=mode,
                               camera=camera)

    def set_camera(
        self, device_id: str, video: Path, sample_fps: float = 5.0,
        motion_gate: bool | None = None, mode: str = "regions", loop: bool = True,
        camera: dict[str, bool] | None = None,
    ) -> Path:
        """(Re)write the device's one camera: a copy of ``video``, in ``mode``; a running
        agent reads it at its next start. ``loop=False`` plays the clip once."""
        config = self.workdir / "agents" / f"{device_id}.toml"
        clip = self.camera_clip(device_id)
        clip.parent.mkdir(exist_ok=True)
        shutil.copyfile(video, clip)
        text = config.read_text().split("\n[[cameras]]")[0].rstrip("\n")
        text += (
            f'\n\n[[cameras]]\ncamera_id = "cam0"\nsource = "{clip}"\n'
            f"loop = {str(loop).lower()}\nsample_fps = {sample_fps}\nmode = \"{mode}\"\n"
        )
        if motion_gate is not None:
            text += f"motion_gate = {str(motion_gate).lower()}\n"
        for key, value in (camera or {}).items():
            text += f"{key} = {str(value).lower()}\n"
        config.write_text(text)
        return config

    def start_agent(self, device_id: str) -> Proc:
        config = self.workdir / "agents" / f"{device_id}.toml"
        return self.spawn(
            f"agent-{device_id}", "agent", "run", "--config", str(config),
            **{"PARKWATCH_AGENT_WINDOW_SECONDS": str(self.window_seconds), **self.agent_env},
        )

    def release_and_roll_out(
        self, model_name: str, *devices: str, mode: str = "active", options: Sequence[str] = ()
    ) -> str:
        """Sign a release of the newest version and start its rollout (``options``: more
        `rollouts start` flags, e.g. ``["--waves", "1,100%"]``)."""
        release = self.cli_json("releases", "create", model_name)
        args = ["rollouts", "start", release["release_id"], "--mode", mode, *options]
        for device in devices:
            args += ["--device", device]
        self.cli_json(*args)
        return str(release["release_id"])

    def wait_for_release(self, device_id: str, release_id: str, timeout: float = 120) -> Any:
        def active() -> Any:
            device = self.api(f"/devices/{device_id}")
            reported = device.get("reported") or {}
            current = reported.get("active") or {}
            ok = current.get("release_id") == release_id and current.get("stage") == "healthy"
            return device if ok else None

        return wait_until(active, timeout, f"{device_id} to run {release_id} healthy")

    def windows(self, device_id: str, release_id: str | None = None) -> list[dict[str, Any]]:
        items = self.api("/telemetry", device=device_id, limit=1000)["items"]
        return [w for w in items if release_id is None or w["release_id"] == release_id]


def _set_toml_key(text: str, key: str, value: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith(f"{key} ")]
    head = [f"{key} = {json.dumps(value)}"]
    return "\n".join(head + lines) + "\n"


def class_counts(windows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in windows:
        for cam in w["window"]["cameras"]:
            for label, n in cam["class_counts"].items():
                counts[label] = counts.get(label, 0) + n
    return counts


@contextmanager
def running_loop(workdir: Path, mqtt_url: str | None = None, **kw: Any) -> Iterator[Loop]:
    loop = Loop(workdir, mqtt_url=mqtt_url, **kw)
    try:
        yield loop
    finally:
        loop.stop_all()
