"""What a broker crash (kill -9) loses, per persistence setting, and what saving costs.

Mosquitto acknowledges a QoS 1 PUBLISH (PUBACK) from memory and writes its state to
disk when it autosaves. Part 1 kills it at a random moment while a device publishes
telemetry-size messages (QoS 1, --crash-rate per second) and the ingest subscriber (a
persistent session) is away, so the broker holds its queue: the worst case. After the
restart the subscriber collects that queue; lost = acknowledged to the publisher and
never received. The variants take turns in every round:

- before: ``persistence true`` with the default autosave (1800 s), as shipped before;
- shipped: the persistence lines of deploy/mosquitto/mosquitto.conf;
- on changes: ``autosave_on_changes true`` with ``autosave_interval 1``;
- shipped + agent outbox: the shipped broker, and the publisher is the agent's own
  Outbox and MqttLink, which send again what was acknowledged shortly before a link
  dropped (lost = stored in the outbox and never received).

Part 2, the price of saving: with the retained state of --devices devices (three 1 KiB
messages each) in the broker, the device publishes --rate messages/s to an online
subscriber for --seconds. Broker CPU ms per message and MiB written per second
(/proc/PID), and the share of messages delivered within a second of the end, against
``persistence false``.

    python bench/broker_crash.py [--rounds 5] [--devices 1000] [--rate 350] [--seconds 8]
"""

from __future__ import annotations

import argparse
import functools
import getpass
import logging
import os
import random
import shutil
import signal
import socket
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

from edge_agent.config import MqttTarget
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from scripts.loop import free_port

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "parkwatch/v1/devices/bench-1/telemetry"
PAYLOAD_PAD = b"x" * 1100  # a one-camera window is about 1.1 KiB
PERSISTENCE_KEYS = ("persistence ", "autosave_interval", "autosave_on_changes")


def shipped_persistence() -> list[str]:
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    return [line for line in text.splitlines() if line.startswith(PERSISTENCE_KEYS)]


VARIANTS: dict[str, list[str]] = {
    "before (autosave 1800 s)": ["persistence true"],
    "shipped": shipped_persistence(),
    "on changes (autosave_on_changes, 1)": ["persistence true", "autosave_on_changes true",
                                            "autosave_interval 1"],
}


class Broker:
    """A private Mosquitto whose state lives in ``folder``."""

    def __init__(self, folder: Path, lines: list[str]) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join([
            f"listener {self.port} 127.0.0.1", "allow_anonymous true",
            f"user {getpass.getuser()}",
            "max_queued_messages 100000", *lines, f"persistence_location {folder}/", ""]))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise SystemExit(f"mosquitto did not start with {self.conf}")

    def save(self) -> None:
        """SIGUSR1: Mosquitto writes its database now; wait until it is there."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not (self.conf.parent / "mosquitto.db").exists():
            if time.monotonic() > deadline:
                raise SystemExit("mosquitto did not save its database on SIGUSR1")
            time.sleep(0.02)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def usage(self) -> tuple[float, int]:
        """CPU seconds and bytes written so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        io = dict(line.split(": ") for line in
                  Path(f"/proc/{self.proc.pid}/io").read_text().splitlines())
        return cpu, int(io["write_bytes"])


def client(port: int, client_id: str = "", clean: bool = True) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


class Ingest:
    """The control plane's subscriber: a persistent session, QoS 1."""

    def __init__(self, broker: Broker) -> None:
        self.broker, self._last = broker, time.monotonic()
        self.received: set[int] = set()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="ingest",
                             clean_session=False)
        self.c.on_connect = lambda c, u, f, r, p: c.subscribe(TOPIC, qos=1)
        self.c.on_message = self._message
        self.subscribed = threading.Event()
        self.c.on_subscribe = lambda *_a: self.subscribed.set()

    def _message(self, c: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
        self.received.add(int(msg.payload.split(b" ", 1)[0]))
        self._last = time.monotonic()

    def connect(self) -> None:
        self.c.connect("127.0.0.1", self.broker.port)
        self.c.loop_start()

    def away(self) -> None:
        self.connect()
        self.subscribed.wait(5)
        self.c.disconnect()
        self.c.loop_stop()

    def collect(self, quiet: float = 1.5) -> set[int]:
        self.connect()
        self._last = time.monotonic()
        while time.monotonic() - self._last < quiet:
            time.sleep(0.1)
        self.c.disconnect()
        self.c.loop_stop()
        return self.received


def paho_publisher(broker: Broker, rate: float, seconds: float) -> set[int]:
    """Publish until the broker is killed; the numbers it acknowledged."""
    acked: set[int] = set()
    mids: dict[int, int] = {}
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="device")
    pub.on_publish = lambda c, u, mid, r, p: acked.add(mids.get(mid, -1))
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        mids[pub.publish(TOPIC, b"%d " % n + PAYLOAD_PAD, qos=1).mid] = n
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    broker.kill()
    pub.loop_stop()
    acked.discard(-1)
    return acked


def crash_round(lines: list[str], agent: bool, rate: float) -> tuple[int, int]:
    """One kill -9 mid-stream; (messages acknowledged or queued, lost)."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp, lines)
        broker.start()
        ingest = Ingest(broker)
        ingest.away()
        broker.save()  # a real ingest session is old, hence saved, whatever the autosave
        seconds = random.uniform(1.0, 3.0)
        if agent:
            sent = outbox_publisher(broker, tmp, rate, seconds)
        else:
            sent = paho_publisher(broker, rate, seconds)
            broker.start()
        lost = sent - ingest.collect()
        broker.stop()
        return len(sent), len(lost)


def outbox_publisher(broker: Broker, tmp: Path, rate: float, seconds: float) -> set[int]:
    """The agent's Outbox and MqttLink; kill -9 mid-stream, restart, wait for the drain."""
    box = Outbox(tmp / "outbox.sqlite3", resend_seconds=120)
    target = MqttTarget("127.0.0.1", broker.port, tls=False, username=None)
    link = MqttLink("bench-1", target, box, lambda desired: None, "bench")
    link.start()
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        box.put("telemetry", TOPIC, b"%d " % n + PAYLOAD_PAD)
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    broker.kill()
    broker.start()
    deadline = time.monotonic() + 60
    while (box.count() or not link.connected) and time.monotonic() < deadline:
        time.sleep(0.1)
    link.stop(flush_seconds=1)
    box.close()
    return set(range(n))


def cost(lines: list[str], devices: int, rate: float, seconds: float) -> tuple[float, ...]:
    """Broker CPU ms per message, MiB written per second, share delivered in time."""
    with tempfile.TemporaryDirectory() as tmp_name:
        broker = Broker(Path(tmp_name), lines)
        broker.start()
        try:
            loader = client(broker.port)
            for i in range(devices * 3):
                loader.publish(f"parkwatch/v1/devices/d{i // 3}/s{i % 3}", PAYLOAD_PAD[:1024],
                               qos=1, retain=True).wait_for_publish(30)
            loader.disconnect()
            loader.loop_stop()
            got = [0]
            sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="ingest")
            sub.on_message = lambda c, u, m: got.__setitem__(0, got[0] + 1)
            sub.connect("127.0.0.1", broker.port)
            sub.subscribe(TOPIC, qos=1)
            sub.loop_start()
            time.sleep(1.0)
            pub = client(broker.port)
            cpu0, written0 = broker.usage()
            start, n = time.monotonic(), 0
            while time.monotonic() - start < seconds:
                pub.publish(TOPIC, PAYLOAD_PAD, qos=1)
                n += 1
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
            time.sleep(1.0)
            cpu1, written1 = broker.usage()
            for c in (pub, sub):
                c.disconnect()
                c.loop_stop()
            return (1000 * (cpu1 - cpu0) / n, (written1 - written0) / 2**20 / (seconds + 1),
                    got[0] / n)
        finally:
            broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--crash-rate", type=float, default=200.0)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=350.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    logging.getLogger("edge_agent").setLevel(logging.ERROR)  # reconnect lines are expected
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed: apt-get install -y mosquitto")
    runs: dict[str, Callable[[], tuple[int, int]]] = {
        name: functools.partial(crash_round, lines, False, args.crash_rate)
        for name, lines in VARIANTS.items()}
    runs["shipped + agent outbox"] = functools.partial(crash_round, VARIANTS["shipped"], True,
                                                       args.crash_rate)
    losses: dict[str, list[tuple[int, int]]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            losses[name].append(run())
    print(f"### Broker kill -9, ingest away ({args.rounds} rounds, {args.crash_rate:.0f} "
          f"QoS 1 messages/s, killed 1-3 s in)\n")
    print("| broker | sent (median) | lost: median | max | lost share | "
          "median loss in seconds of traffic |\n|---|---|---|---|---|---|")
    for name, rows in losses.items():
        lost = [lo for _, lo in rows]
        share = sum(lost) / max(1, sum(n for n, _ in rows))
        print(f"| {name} | {statistics.median(n for n, _ in rows):.0f} | "
              f"{statistics.median(lost):.0f} | {max(lost)} | {share:.2f} | "
              f"{statistics.median(lost) / args.crash_rate:.2f} |")
    print("\nsent: acknowledged to the publisher; for the agent outbox, stored in it.")
    print(f"shipped persistence lines: {'; '.join(VARIANTS['shipped'])}\n")
    costs = {"persistence false": ["persistence false"], **VARIANTS}
    measured = {name: cost(lines, args.devices, args.rate, args.seconds)
                for name, lines in costs.items()}
    base_cpu = measured["persistence false"][0]
    print(f"### The price of saving ({args.devices} devices' retained state, "
          f"{args.rate:.0f} messages/s for {args.seconds:.0f} s, subscriber online)\n")
    print("| broker | CPU ms/message | ratio to no persistence | MiB written/s | "
          "delivered in time |\n|---|---|---|---|---|")
    for name, (cpu_ms, mib_s, delivered) in measured.items():
        print(f"| {name} | {cpu_ms:.3f} | {cpu_ms / base_cpu:.1f} | {mib_s:.1f} | "
              f"{delivered:.2f} |")
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nmachine: {cpu_name()}, {os.cpu_count()} logical CPUs (load {load}); "
          f"{version.splitlines()[0] if version else 'mosquitto'}")


if __name__ == "__main__":
    main()
