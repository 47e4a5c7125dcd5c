"""Memory over time: does ``parkwatch serve`` (and an agent beside it) stop growing?

A compressed day: a private Mosquitto, a real ``parkwatch serve`` (SQLite, drift analysis
every few seconds, the rollout engine), a simulated fleet publishing one day of one-minute
telemetry windows per device as fast as ingest takes them, operators polling the API (the
dashboard's reads), and one real agent process (``parkwatch agent run``, a looping video,
1 s windows) beside them. Every process's resident memory is sampled throughout; the
report gives, per process, the growth in each half of the run and that growth per hour of
wall time and per simulated day. A process whose second half grows less than a quarter of
its first half (or under 1 MB) has plateaued.

    python bench/soak.py [--devices 40] [--day-minutes 1440] [--seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import httpx
import numpy as np
import paho.mqtt.client as paho
import tomli_w
from _fleet_rig import stored, wait_port
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.store.db import create_db_engine
from control_plane.testing import telemetry_window
from protocols import encode, telemetry_topic
from scripts.loop import free_port

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident MB of ``pid``: all of it (VmRSS), or its heap alone (RssAnon)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Samples each process's RSS every ``every`` seconds: (elapsed s, MB) per name."""

    def __init__(self, pids: dict[str, int], every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: dict[str, list[tuple[float, float]]] = {
            key: [] for name in pids for key in (name, name + " heap")}
        self.stop_event = threading.Event()
        self.start_time = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.wait(self.every):
            now = time.monotonic() - self.start_time
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):  # the process has exited
                    self.samples[name].append((now, rss_mb(pid)))
                    self.samples[name + " heap"].append((now, rss_mb(pid, "RssAnon")))


def start_broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    "max_inflight_messages 100\nmax_queued_messages 100000\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_serve(tmp: Path, mqtt_port: int,
                drift_interval: float) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "PARKWATCH_DATA_DIR": str(tmp / "cp"), "PARKWATCH_PORT": str(port),
           "PARKWATCH_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
           "PARKWATCH_MQTT_CLIENT_ID": "soak-cp", "PARKWATCH_LOG_LEVEL": "WARNING",
           "PARKWATCH_DRIFT": f'{{"analysis_interval_s": {drift_interval}}}'}
    env.pop("PARKWATCH_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "parkwatch_cli", "serve"], cwd=ROOT, env=env,
                            stdout=(tmp / "serve.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=180)  # a loaded 2-core machine took over 60 s
    except SystemExit:
        log = (tmp / "serve.log").read_text(errors="replace")[-1500:]
        raise SystemExit(f"serve did not listen on {port} (exit {proc.poll()}):\n{log}") from None
    token = (tmp / "cp" / "admin.token").read_text().strip()
    return proc, f"http://127.0.0.1:{port}", token


def start_agent(tmp: Path, toml_text: str) -> subprocess.Popen[bytes]:
    import tomllib

    video = tmp / "loop.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(50):
        writer.write(np.clip(rng.normal(90 + i, 20, (120, 160, 3)), 0, 255).astype(np.uint8))
    writer.release()
    config = tomllib.loads(toml_text)
    config.update(data_dir=str(tmp / "agent"), window_seconds=1, cameras=[
        {"camera_id": "gate", "source": str(video), "loop": True, "sample_fps": 5.0}])
    path = tmp / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    return subprocess.Popen([sys.executable, "-m", "parkwatch_cli", "agent", "run", "--config",
                             str(path)], cwd=ROOT, stdout=(tmp / "agent.log").open("wb"),
                            stderr=subprocess.STDOUT)


def publish_day(mqtt_port: int, devices: list[str], minutes: int, stop: threading.Event,
                done: Callable[[int], None]) -> None:
    """One window per device per simulated minute, dated over the last day, QoS 1."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-fleet")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(5000)
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    day_start = datetime.now(UTC) - timedelta(minutes=minutes + 5)
    sent = 0
    try:
        for minute in range(minutes):
            for device in devices:
                if stop.is_set():
                    return
                window = telemetry_window(device, minute, class_counts={"cat": 5, "dog": 3})
                start = day_start + timedelta(minutes=minute)
                window = window.model_copy(update={"window_start": start,
                                                   "window_end": start + timedelta(minutes=1)})
                info = client.publish(telemetry_topic(device), encode(window), qos=1)
                sent += 1
                if sent % 50 == 0:  # bounded in flight without a round trip per window
                    info.wait_for_publish(30)
            done(sent)
    finally:
        client.loop_stop()
        client.disconnect()


def poll_api(url: str, token: str, stop: threading.Event, depth: list[float]) -> None:
    """What a dashboard left open does: the fleet, alerts and drift, every second; keeps the
    deepest ingest queue seen in ``depth[0]`` (messages received, not yet stored) and the
    count of failed requests in ``depth[1]`` (a busy server resets some: keep polling)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as http:
        while not stop.wait(1.0):
            try:
                for path in ("/api/v1/devices", "/api/v1/alerts", "/api/v1/rollouts",
                             "/api/v1/audit?limit=20"):
                    http.get(path)
                for line in http.get("/metrics").text.splitlines():
                    if line.startswith("parkwatch_cp_ingest_queue_depth "):
                        depth[0] = max(depth[0], float(line.split()[1]))
            except httpx.HTTPError:
                depth[1] += 1


def growth(samples: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(start MB, end MB, growth in the first half, in the second half), after warm-up."""
    if len(samples) < 6:
        return 0.0, 0.0, 0.0, 0.0
    warm = samples[len(samples) // 10:]  # the first tenth is start-up
    mid = warm[len(warm) // 2][1]
    return warm[0][1], warm[-1][1], mid - warm[0][1], warm[-1][1] - mid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--day-minutes", type=int, default=1440,
                        help="simulated minutes, one window per device each")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall time at most")
    parser.add_argument("--drift-interval", type=float, default=5.0,
                        help="seconds between drift analyses in serve (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        broker, mqtt_port = start_broker(tmp)
        try:
            serve, url, token = start_serve(tmp, mqtt_port, args.drift_interval)
        except BaseException:  # no broker left behind when serve does not come up
            broker.terminate()
            raise
        procs: list[subprocess.Popen[bytes]] = [broker, serve]
        try:
            devices = [f"soak-{i:03d}" for i in range(args.devices)]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as h:
                made = [h.post("/api/v1/devices", json={"device_id": d}).json() for d in devices]
                agent_toml = h.post("/api/v1/devices", json={"device_id": "soak-agent"}).json()
            agent = start_agent(tmp, agent_toml["agent_config_toml"])
            procs.append(agent)
            assert len(made) == args.devices
            sampler = Sampler({"serve": serve.pid, "agent": agent.pid})
            sampler.start()
            stop = threading.Event()
            progress = [0]
            fleet = threading.Thread(target=publish_day, daemon=True, args=(
                mqtt_port, devices, args.day_minutes, stop,
                lambda n: progress.__setitem__(0, n)))
            depth = [0.0, 0.0]
            poller = threading.Thread(target=poll_api, args=(url, token, stop, depth),
                                      daemon=True)
            fleet.start()
            poller.start()
            began = time.monotonic()
            fleet.join(timeout=args.seconds)
            # Memory held by a backlog is not growth: wait until ingest has stored the day.
            engine = create_db_engine(f"sqlite:///{tmp / 'cp' / 'parkwatch.db'}")
            deadline = time.monotonic() + args.seconds
            while stored(engine) < progress[0] and time.monotonic() < deadline:
                time.sleep(1.0)
            ingested = stored(engine)
            engine.dispose()
            drained = time.monotonic() - began
            drained_at = time.monotonic() - sampler.start_time
            # Keep sampling as long again as the day took, or at least 10 s: growth that goes
            # on after the load stops is a leak, not a working set.
            time.sleep(max(10.0, min(args.seconds, time.monotonic() - began) / 4))
            stop.set()
            wall = time.monotonic() - began
            sampler.stop_event.set()
            sampler.join()
        finally:
            for name, proc in (("serve", serve), ("agent", procs[-1])):
                if proc.poll() is not None:  # died during the run: say why
                    log = (tmp / f"{name}.log").read_text(errors="replace")[-1500:]
                    print(f"{name} exited {proc.returncode} during the run:\n{log}")
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        print(f"ingest stored {ingested} of {progress[0]} windows after {drained:.0f} s; "
              f"deepest ingest queue {depth[0]:.0f} messages; {depth[1]:.0f} API polls failed")
        report(sampler.samples, progress[0], args.devices, args.day_minutes, wall, drained_at)


def report(samples: dict[str, list[tuple[float, float]]], sent: int, devices: int,
           day_minutes: int, wall: float, drained_at: float) -> None:
    """Per process: growth per half, per hour and per simulated day, and in the idle tail
    (after ingest stored the day, the API still polled): a leak grows there too."""
    days = sent / devices / 1440 if devices else 0.0
    print(f"soak: {sent} windows from {devices} devices ({days:.2f} simulated days of "
          f"1-min windows, {day_minutes} planned) in {wall:.0f} s wall")
    print(f"{'process':<11} {'start MB':>9} {'end MB':>8} {'1st half':>9} {'2nd half':>9} "
          f"{'MB/h wall':>10} {'MB/day sim':>11} {'idle tail':>10}  verdict")
    for name, points in samples.items():
        start, end, first, second = growth(points)
        hours = (points[-1][0] - points[len(points) // 10][0]) / 3600 if points else 0
        per_hour = (end - start) / hours if hours else 0.0
        per_day = (end - start) / days if days else 0.0
        flat = second <= max(1.0, first / 4)
        tail = [mb for at, mb in points if at >= drained_at]
        idle = tail[-1] - tail[0] if tail else 0.0
        print(f"{name:<11} {start:>9.1f} {end:>8.1f} {first:>+9.1f} {second:>+9.1f} "
              f"{per_hour:>10.1f} {per_day:>11.1f} {idle:>+10.1f}  "
              f"{'plateau' if flat else 'STILL GROWING'}")


if __name__ == "__main__":
    main()
