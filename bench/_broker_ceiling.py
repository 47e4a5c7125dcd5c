"""The broker's own ceiling for ``fleet_ingest.py``: messages/s Mosquitto moves from the
fleet's publisher, with the same payloads, to a trivial QoS 1 subscriber (a paho client
that counts and acknowledges on receipt), to ``mosquitto_sub -q 1`` (C), and from
``mosquitto_pub -l`` to ``mosquitto_sub`` (no Python at either end); and the CPU a
message costs the publisher, the broker and the paho subscriber, read from /proc.

The fleet's payloads live here too: ingest is measured with the same ones and the same
publisher (``_fleet_publisher.py``), so its ratio to the ceiling compares like with like.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from _fleet_publisher import (  # bench/ is on sys.path: scripts run from it
    INFLIGHT,
    network_tid,
    open_publisher,
)
from _fleet_rig import process_cpu, start_broker, thread_cpu
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.drift import synthetic
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow, encode, telemetry_topic


@dataclass(frozen=True)
class Load:
    devices: list[str]
    windows: int
    batch_size: int
    inflight: int
    drift: bool  # windows with a camera's histograms of a registered release: rollups run


RELEASE = "rel-bench"
PROFILE = synthetic.profile(seed=0)


def fleet_payloads(load: Load) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for i in range(load.windows):
        device, seq = load.devices[i % len(load.devices)], i // len(load.devices)
        window = (TelemetryWindow.model_validate(synthetic.window(
            PROFILE, device, seq, rng=rng, frames=60, release_id=RELEASE,
            start=start + timedelta(minutes=seq))) if load.drift
                  else telemetry_window(device, seq))
        out.append((telemetry_topic(device), encode(window)))
    return out


Payloads = list[tuple[str, bytes]]  # (topic, payload) of every window, in sending order


@dataclass(frozen=True)
class Ceiling:
    """One measurement of the broker's ceilings, messages/s, and what it cost."""

    paho: float  # to the trivial paho subscriber: the ceiling ingest is reported against
    native: float  # to mosquitto_sub -q 1
    alone: float  # mosquitto_pub to mosquitto_sub: no Python at either end
    cpu: dict[str, float]  # CPU seconds a message at the paho ceiling: publisher, broker, sub
    load: float  # the 1-minute load average when it started


def measure_ceiling(load: Load, payloads: Payloads, tmp: Path, publisher: str) -> Ceiling:
    """The three ceilings one after the other, the fleet's ``publisher`` kind sending."""
    loadavg = os.getloadavg()[0]
    paho_rate, cpu = broker_ceiling(load, payloads, tmp, publisher)
    return Ceiling(paho_rate, native_ceiling(load, payloads, tmp, publisher),
                   broker_alone(load, payloads, tmp), cpu, loadavg)


def broker_ceiling(load: Load, payloads: Payloads, tmp: Path, publisher: str
                   ) -> tuple[float, dict[str, float]]:
    """Messages/s the broker moves from the fleet's publisher, with the same payloads, to a
    trivial QoS 1 subscriber (counts and acknowledges on receipt): ingest's ceiling; and
    the CPU seconds per message of the publisher, the broker and that subscriber."""
    port, broker = start_broker(tmp, load.inflight)
    got = 0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got == len(payloads):
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"trivial-{port}",
                      clean_session=False)
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    try:
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        sub.subscribe("$share/ingest/parkwatch/v1/devices/+/telemetry", qos=1)
        subscribed.wait(10)
        sender = open_publisher(publisher, port, payloads)
        receiver = network_tid(sub)
        before = {"broker": process_cpu(broker.pid), "subscriber": thread_cpu(receiver)}
        start = time.perf_counter()
        sender.send()
        done.wait(600)
        seconds = time.perf_counter() - start
        spent = {"publisher": sender.cpu_seconds(),
                 "broker": process_cpu(broker.pid) - before["broker"],
                 "subscriber": thread_cpu(receiver) - before["subscriber"]}
        sender.close()
        return got / seconds, {k: v / max(got, 1) for k, v in spent.items()}
    finally:
        sub.disconnect()
        sub.loop_stop()
        broker.terminate()
        broker.wait(10)


def native_ceiling(load: Load, payloads: Payloads, tmp: Path, publisher: str) -> float:
    """Messages/s the broker moves from the fleet's publisher, with the same payloads, to
    ``mosquitto_sub -q 1`` (C, payloads to /dev/null): the broker's ceiling where the
    subscriber is not bound by Python. Its persistent session is made first (``-E``
    exits at the SUBACK), so nothing published before it reconnects is lost."""
    port, broker = start_broker(tmp, load.inflight)
    sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c",
           "-i", f"native-{port}", "-t", "$share/ingest/parkwatch/v1/devices/+/telemetry"]
    try:
        subprocess.run([*sub, "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)
        counter = subprocess.Popen([*sub, "-C", str(len(payloads))],
                                   stdout=subprocess.DEVNULL)
        sender = open_publisher(publisher, port, payloads)
        start = time.perf_counter()
        sender.send()
        counter.wait(600)
        seconds = time.perf_counter() - start
        sender.close()
        return len(payloads) / seconds
    finally:
        broker.terminate()
        broker.wait(10)


def broker_alone(load: Load, payloads: Payloads, tmp: Path) -> float:
    """Messages/s with neither end in Python: ``mosquitto_pub -l -q 1`` sends the same
    payloads (one topic, as many in flight as the fleet publisher) to ``mosquitto_sub``."""
    port, broker = start_broker(tmp, load.inflight)
    sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c",
           "-i", f"alone-{port}", "-t", "parkwatch/v1/devices/+/telemetry"]
    lines = tmp / f"payloads-{port}.txt"
    if any(b"\n" in p for _, p in payloads):
        raise SystemExit("a payload spans lines; mosquitto_pub -l sends one per line")
    lines.write_bytes(b"\n".join(p for _, p in payloads) + b"\n")
    try:
        subprocess.run([*sub, "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)
        counter = subprocess.Popen([*sub, "-C", str(len(payloads))],
                                   stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        with lines.open("rb") as stdin:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                            "-M", str(INFLIGHT), "-l", "-t", telemetry_topic(load.devices[0])],
                           stdin=stdin, check=True, timeout=600)
        counter.wait(600)
        return len(payloads) / (time.perf_counter() - start)
    finally:
        broker.terminate()
        broker.wait(10)
