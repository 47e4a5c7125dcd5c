"""What broker security costs: plain MQTT vs TLS + per-device passwords and ACLs.

Starts two private Mosquitto brokers side by side (one plain and anonymous, one with
the shipped deploy/mosquitto config: TLS, password file and ACL from `parkwatch mqtt
acl` code), then measures, interleaved round by round:

- connects/s: sequential connect + CONNACK + disconnect of device clients (the
  reconnect storm after a broker restart is this, times the fleet);
- QoS 1 publishes/s: one device sending telemetry-size messages (1 KiB), PUBACK each,
  at most 20 in flight (the agent's outbox window).

    python bench/broker_security.py [--connects 100] [--messages 2000] [--rounds 3]

Prints a markdown table (median with min/max over rounds), the ratios, and the machine.
"""

from __future__ import annotations

import argparse
import getpass
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from _machine import cpu_name  # bench/ is on sys.path: scripts run from it
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.broker import acl as mqtt_acl
from control_plane.broker.devcerts import make_dev_certs
from scripts.loop import free_port

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"x" * 1024


def start_broker(conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"mosquitto did not start with {conf}")


class Target:
    def __init__(self, port: int, ca: Path | None, login: tuple[str, str] | None) -> None:
        self.port, self.login = port, login
        # One context for all clients, as one agent has: its set-up is not the broker's cost.
        self.tls = ssl.create_default_context(cafile=str(ca)) if ca else None

    def client(self, client_id: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.login:
            c.username_pw_set(*self.login)
        if self.tls:
            c.tls_set_context(self.tls)
        return c


def connects_per_s(target: Target, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        c = target.client(f"bench-{i}")
        done = threading.Event()
        c.on_connect = lambda *_a, d=done: d.set()
        c.connect("localhost", target.port)
        c.loop_start()
        if not done.wait(10):
            raise SystemExit("no CONNACK")
        c.disconnect()
        c.loop_stop()
    return n / (time.perf_counter() - start)


def publishes_per_s(target: Target, n: int, topic: str) -> float:
    c = target.client("bench-pub")
    c.max_inflight_messages_set(20)
    c.connect("localhost", target.port)
    c.loop_start()
    try:
        start = time.perf_counter()
        infos = [c.publish(topic, PAYLOAD, qos=1) for _ in range(n)]
        for info in infos:
            info.wait_for_publish(30)
        return n / (time.perf_counter() - start)
    finally:
        c.disconnect()
        c.loop_stop()


def machine() -> str:
    cpu = cpu_name()
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} logical CPUs (load {load}); "
            f"{version.splitlines()[0] if version else 'mosquitto'}, Python "
            f"{platform.python_version()}")


def row(name: str, values: list[float]) -> str:
    return (f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} | "
            f"{max(values):,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connects", type=int, default=100)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed: apt-get install -y mosquitto")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        certs = make_dev_certs(tmp, ["localhost"])
        secret = mqtt_acl.rotate_secret(tmp)
        device = mqtt_acl.device_account(secret, "bench-1", 1)
        mqtt_acl.write_broker_files(tmp, [mqtt_acl.service_account(secret), device])
        plain_port, secure_port = free_port(), free_port()
        plain_conf = tmp / "plain.conf"
        plain_conf.write_text(f"listener {plain_port} 127.0.0.1\nallow_anonymous true\n"
                              "persistence false\n")
        shipped = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        secure_conf = tmp / "secure.conf"
        secure_conf.write_text(
            shipped.replace("/etc/mosquitto/parkwatch", str(tmp))
            .replace("listener 8883", f"listener {secure_port} 127.0.0.1")
            .replace("persistence true", "persistence false")
            .replace("use_username_as_clientid true", "use_username_as_clientid false")
            + f"user {getpass.getuser()}\n"
        )
        procs = [start_broker(plain_conf, plain_port), start_broker(secure_conf, secure_port)]
        plain = Target(plain_port, None, None)
        secure = Target(secure_port, certs.ca_cert, (device.username, device.password))
        topic = "parkwatch/v1/devices/bench-1/telemetry"
        results: dict[str, list[float]] = {}
        benches: list[tuple[str, Callable[[], float]]] = [
            ("connects/s, plain", lambda: connects_per_s(plain, args.connects)),
            ("connects/s, TLS + password + ACL", lambda: connects_per_s(secure, args.connects)),
            ("QoS 1 publishes/s, plain", lambda: publishes_per_s(plain, args.messages, topic)),
            ("QoS 1 publishes/s, TLS + ACL",
             lambda: publishes_per_s(secure, args.messages, topic)),
        ]
        try:
            for _ in range(args.rounds):
                for name, bench in benches:
                    results.setdefault(name, []).append(bench())
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"### Broker security ({args.rounds} rounds, {args.connects} connects, "
          f"{args.messages} x 1 KiB messages)\n")
    print("| figure | median | min | max |\n|---|---|---|---|")
    for name, values in results.items():
        print(row(name, values))
    print()
    print(f"ratio secure / plain, connects: "
          f"{med['connects/s, TLS + password + ACL'] / med['connects/s, plain']:.2f}")
    print(f"ratio secure / plain, publishes: "
          f"{med['QoS 1 publishes/s, TLS + ACL'] / med['QoS 1 publishes/s, plain']:.2f}")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
