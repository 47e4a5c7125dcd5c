"""The broker's own ceiling for ``fleet_ingest.py``: messages/s Mosquitto moves from the
fleet's publisher, with the same payloads, to a trivial QoS 1 subscriber (a paho client
that counts and acknowledges on receipt), to ``mosquitto_sub -q 1`` (C), and from
``mosquitto_pub -l`` to ``mosquitto_sub`` (no Python at either end); and the CPU a
message costs the publisher, the broker and the paho subscriber, read from /proc.

The fleet's payloads and publisher live here too: ingest is measured with the same ones,
so its ratio to the ceiling compares like with like.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from _fleet_rig import (  # bench/ is on sys.path: scripts run from it
    process_cpu,
    start_broker,
    thread_cpu,
)
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


def publisher(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-{port}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def network_tid(client: paho.Client) -> int:
    """The thread id of ``client``'s network loop (started by ``loop_start``)."""
    thread = client._thread
    assert thread is not None and thread.native_id is not None
    return thread.native_id


class PublisherCpu:
    """CPU seconds of the fleet publisher: this thread's publish calls (``publishing``)
    and paho's network thread of ``client``, which sends them."""

    def __init__(self, client: paho.Client) -> None:
        self._tid = network_tid(client)
        self._calls = 0.0
        self._network = thread_cpu(self._tid)

    def publishing(self, payloads: list[tuple[str, bytes]], client: paho.Client) -> None:
        started = time.thread_time()
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
        self._calls += time.thread_time() - started

    def seconds(self) -> float:
        """So far; read before the client's loop stops (its thread is then gone)."""
        return self._calls + thread_cpu(self._tid) - self._network


def broker_ceiling(load: Load, tmp: Path) -> tuple[float, dict[str, float]]:
    """Messages/s the broker moves from the same publisher, with the same payloads, to a
    trivial QoS 1 subscriber (counts and acknowledges on receipt): ingest's ceiling; and
    the CPU seconds per message of the publisher, the broker and that subscriber."""
    port, broker = start_broker(tmp, load.inflight)
    got = 0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got == load.windows:
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
        payloads = fleet_payloads(load)
        client = publisher(port)
        sender = PublisherCpu(client)
        receiver = network_tid(sub)
        before = {"broker": process_cpu(broker.pid), "subscriber": thread_cpu(receiver)}
        start = time.perf_counter()
        sender.publishing(payloads, client)
        done.wait(600)
        seconds = time.perf_counter() - start
        spent = {"publisher": sender.seconds(),
                 "broker": process_cpu(broker.pid) - before["broker"],
                 "subscriber": thread_cpu(receiver) - before["subscriber"]}
        client.disconnect()
        client.loop_stop()
        return got / seconds, {k: v / max(got, 1) for k, v in spent.items()}
    finally:
        sub.disconnect()
        sub.loop_stop()
        broker.terminate()
        broker.wait(10)


def native_ceiling(load: Load, tmp: Path) -> float:
    """Messages/s the broker moves from the same publisher, with the same payloads, to
    ``mosquitto_sub -q 1`` (C, payloads to /dev/null): the broker's ceiling where the
    subscriber is not bound by Python. Its persistent session is made first (``-E``
    exits at the SUBACK), so nothing published before it reconnects is lost."""
    port, broker = start_broker(tmp, load.inflight)
    sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c",
           "-i", f"native-{port}", "-t", "$share/ingest/parkwatch/v1/devices/+/telemetry"]
    try:
        subprocess.run([*sub, "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)
        payloads = fleet_payloads(load)
        counter = subprocess.Popen([*sub, "-C", str(load.windows)],
                                   stdout=subprocess.DEVNULL)
        client = publisher(port)
        start = time.perf_counter()
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
        counter.wait(600)
        seconds = time.perf_counter() - start
        client.disconnect()
        client.loop_stop()
        return load.windows / seconds
    finally:
        broker.terminate()
        broker.wait(10)


def broker_alone(load: Load, tmp: Path) -> float:
    """Messages/s with neither end in Python: ``mosquitto_pub -l -q 1`` sends the same
    payloads (one topic, as many in flight as the fleet publisher) to ``mosquitto_sub``."""
    port, broker = start_broker(tmp, load.inflight)
    sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c",
           "-i", f"alone-{port}", "-t", "parkwatch/v1/devices/+/telemetry"]
    lines = tmp / f"payloads-{port}.txt"
    payloads = [payload for _, payload in fleet_payloads(load)]
    if any(b"\n" in p for p in payloads):
        raise SystemExit("a payload spans lines; mosquitto_pub -l sends one per line")
    lines.write_bytes(b"\n".join(payloads) + b"\n")
    try:
        subprocess.run([*sub, "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)
        counter = subprocess.Popen([*sub, "-C", str(load.windows)],
                                   stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        with lines.open("rb") as stdin:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                            "-M", "100", "-l", "-t", telemetry_topic(load.devices[0])],
                           stdin=stdin, check=True, timeout=600)
        counter.wait(600)
        return load.windows / (time.perf_counter() - start)
    finally:
        broker.terminate()
        broker.wait(10)
