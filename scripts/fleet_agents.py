"""The simulated agents: one paho client per device, all driven by one selector loop.

Each device speaks the real protocol (``protocols``): ``online`` status with an ``offline``
Last Will, a retained reported state, telemetry windows at QoS 1 drawn from its release's
reference profile (``fleet_synth``), and it acts on desired states like a healthy agent.
paho's external-loop hooks (``on_socket_open``/``close``, ``loop_read``/``write``/``misc``)
let one thread serve every socket: a thousand devices cost a thousand sockets, not threads.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import secrets
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocols import (
    CameraStatus,
    DesiredState,
    DeviceEvent,
    DeviceStatus,
    ProtocolError,
    ReferenceProfile,
    ReleaseManifest,
    ReportedState,
    decode,
    desired_topic,
    encode,
    events_topic,
    reported_topic,
    status_topic,
    telemetry_topic,
)
from protocols.urls import parse_mqtt_url
from scripts.fleet_synth import (
    SimConfig,
    default_profile,
    device_ids,
    reported_after,
    telemetry_window,
)

log = logging.getLogger("fleet_sim")
AGENT_VERSION = "0.1.0-sim"


@dataclass
class SimDevice:
    device_id: str
    index: int
    cameras: list[str]
    faulty: bool
    client: paho.Client
    reported: ReportedState
    profile: ReferenceProfile
    model_version: str | None = None
    sent: int = 0
    events: int = 0
    next_due: float = 0.0
    connected: bool = False
    retry_at: float = 0.0
    connections: int = 0  # connect attempts: the n of its statuses' session "<process>-<n>"


@dataclass
class FleetStats:
    connected: int = 0
    windows_sent: int = 0
    windows_acked: int = 0
    desired_handled: int = 0
    errors: int = 0


class ManifestCache:
    """Release id -> (model version, reference profile), fetched once over the public API."""

    def __init__(self, api: httpx.Client | None) -> None:
        self.api = api
        self._cache: dict[str, tuple[str, ReferenceProfile]] = {}

    def get(self, release_id: str) -> tuple[str, ReferenceProfile]:
        if release_id not in self._cache:
            if self.api is None:
                return "?", default_profile()
            resp = self.api.get(f"/api/v1/releases/{release_id}/manifest")
            resp.raise_for_status()
            payload = base64.b64decode(resp.json()["payload"])
            manifest = ReleaseManifest.model_validate_json(payload)
            self._cache[release_id] = (manifest.model_version, manifest.reference_profile)
        return self._cache[release_id]


class Fleet:
    """Drives every simulated device's MQTT client from one selector loop."""

    def __init__(self, config: SimConfig, mqtt_url: str, manifests: ManifestCache,
                 shard: range | None = None) -> None:
        """``shard``: the indices of the fleet's devices this one drives (default all; one
        thread serves about 8,000 clients, ``fleet_shards`` runs several processes)."""
        self.config = config
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.manifests = manifests
        self.stats = FleetStats()
        self.selector = selectors.DefaultSelector()
        self._writers: set[paho.Client] = set()  # clients with bytes to send
        self._misc_at = 0.0  # when every client last checked its keepalive
        shard = range(config.devices) if shard is None else shard
        self.rng = np.random.default_rng(
            config.seed if shard.start == 0 else [config.seed, shard.start])
        self.seq_base = int(time.time()) * 1000  # unique across runs: ingest dedups by seq
        # Statuses carry a session, as an agent's do, so ingest orders a connection's Will
        # before the next connection's ``online`` whichever worker stores which first.
        self.process = secrets.token_hex(6)
        jitter = random.Random(config.seed)
        n_faulty = round(config.camera_faults * config.devices)
        self.devices = [
            self._device(
                device_id,
                i,
                faulty=i >= config.devices - n_faulty,
                due=jitter.uniform(0, config.interval),
            )
            for i, device_id in enumerate(device_ids(config.prefix, config.devices))
            if i in shard
        ]

    def _device(self, device_id: str, index: int, faulty: bool, due: float) -> SimDevice:
        cameras = [f"cam{c}" for c in range(self.config.cameras)]
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"parkwatch-sim-{device_id}",
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        states = ["reconnecting" if faulty and c == cameras[-1] else "up" for c in cameras]
        reported = ReportedState(
            device_id=device_id,
            agent_version=AGENT_VERSION,
            cameras=[
                CameraStatus(camera_id=c, state=s) for c, s in zip(cameras, states, strict=True)
            ],
        )
        device = SimDevice(
            device_id,
            index,
            cameras,
            faulty,
            client,
            reported,
            default_profile(),
            next_due=time.monotonic() + due,
        )
        client.user_data_set(device)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = lambda c, _d, s: self._register(c, s)
        client.on_socket_close = lambda c, _d, s: self._unregister(s, c)
        # paho says when a client has bytes to send and when it is done, so the loop
        # writes those clients only instead of asking every one of thousands each turn.
        client.on_socket_register_write = lambda c, _d, _s: self._writers.add(c)
        client.on_socket_unregister_write = lambda c, _d, _s: self._writers.discard(c)
        return device

    def _unregister(self, sock: Any, client: paho.Client | None = None) -> None:
        if client is not None:
            self._writers.discard(client)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def _register(self, client: paho.Client, sock: Any) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)

    # -- paho callbacks (all on the loop thread) ---------------------------------------------
    def _on_connect(self, client: paho.Client, d: SimDevice, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused %s: %s", d.device_id, reason)
            return
        d.connected = True
        self.stats.connected += 1
        client.subscribe(desired_topic(d.device_id), qos=1)
        online = DeviceStatus(device_id=d.device_id, state="online", agent_version=AGENT_VERSION,
                              session=f"{self.process}-{d.connections}")
        client.publish(status_topic(d.device_id), encode(online), qos=1, retain=True)
        client.publish(reported_topic(d.device_id), encode(d.reported), qos=1, retain=True)

    def _on_disconnect(self, _c: paho.Client, d: SimDevice, _f: Any, _r: Any, _p: Any) -> None:
        if d.connected:
            self.stats.connected -= 1
        d.connected = False
        d.retry_at = time.monotonic() + random.uniform(1.0, 3.0)

    def _on_publish(self, _c: paho.Client, d: SimDevice, mid: int, _r: Any, _p: Any) -> None:
        if (d.device_id, mid) in self._telemetry_mids:  # mids are per client
            self._telemetry_mids.discard((d.device_id, mid))
            self.stats.windows_acked += 1

    def _on_message(self, client: paho.Client, d: SimDevice, msg: paho.MQTTMessage) -> None:
        try:
            desired = decode(DesiredState, msg.payload)
            if desired.release_id is not None:
                d.model_version, profile = self.manifests.get(desired.release_id)
                if (
                    desired.mode == "active"
                    and desired.release_id not in self.config.reject_releases
                ):
                    d.profile = profile
            reject = desired.release_id in self.config.reject_releases
            d.reported = reported_after(
                d.reported, desired, d.model_version or "?", datetime.now(UTC), reject=reject
            )
        except (ProtocolError, httpx.HTTPError, ValueError, KeyError) as exc:
            self.stats.errors += 1
            log.warning("desired state not applied on %s: %s", d.device_id, exc)
            return
        self.stats.desired_handled += 1
        client.publish(reported_topic(d.device_id), encode(d.reported), qos=1, retain=True)
        if desired.release_id is not None:
            event = DeviceEvent(
                device_id=d.device_id,
                seq=self.seq_base + d.events,
                kind="activation_failed" if reject else "activated",
                release_id=desired.release_id,
                detail=f"{desired.mode} release, desired revision {desired.revision} (simulated)",
            )
            d.events += 1
            client.publish(events_topic(d.device_id), encode(event), qos=1)

    # -- the loop -----------------------------------------------------------------------------
    def _publish_window(self, d: SimDevice, end: datetime, seconds: float) -> None:
        cfg = self.config
        active, shadow = d.reported.active, d.reported.shadow
        window = telemetry_window(
            self.rng,
            d.profile,
            device_id=d.device_id,
            seq=self.seq_base + d.sent,
            start=end - timedelta(seconds=seconds),
            seconds=seconds,
            camera_ids=d.cameras,
            drift=cfg.drift.level(d.index, cfg.devices, d.sent),
            fps=cfg.fps,
            release_id=active.release_id if active else None,
            model_version=active.model_version if active else None,
            shadow_release_id=shadow.release_id if shadow and shadow.stage == "healthy" else None,
            shadow_agreement=cfg.shadow_agreement,
        )
        if d.faulty:
            cams = list(window.cameras)
            cams[-1] = cams[-1].model_copy(update={"state": "reconnecting", "reconnects": 2})
            window = window.model_copy(update={"cameras": cams})
        info = d.client.publish(telemetry_topic(d.device_id), encode(window), qos=1)
        self._telemetry_mids.add((d.device_id, info.mid))
        d.sent += 1
        self.stats.windows_sent += 1

    def _tick(self, now: float) -> None:
        cfg = self.config
        # Keepalive checks (pings, lapsed connections) once a second are plenty for a
        # 30 s keepalive; at every 0.2 s tick they were a large share of a shard's thread.
        misc = now - self._misc_at >= 1.0
        if misc:
            self._misc_at = now
        for d in self.devices:
            if not d.connected:
                if now >= d.retry_at:
                    self._connect(d, now)
                continue
            while d.sent < cfg.backfill and (cfg.windows == 0 or d.sent < cfg.windows):
                back = cfg.backfill - d.sent - 1  # the last backfilled window ends now
                end = datetime.now(UTC) - timedelta(seconds=back * cfg.window_seconds)
                self._publish_window(d, end, cfg.window_seconds)
            if now >= d.next_due and (cfg.windows == 0 or d.sent < cfg.windows):
                # A live window covers the real time since the last one.
                self._publish_window(d, datetime.now(UTC), cfg.interval)
                d.next_due = now + cfg.interval
            if misc:
                d.client.loop_misc()

    def _connect(self, d: SimDevice, now: float) -> None:
        d.connections += 1  # this attempt's Will names it
        offline = DeviceStatus(device_id=d.device_id, state="offline", agent_version=AGENT_VERSION,
                               session=f"{self.process}-{d.connections}")
        d.client.will_set(status_topic(d.device_id), encode(offline), qos=1, retain=True)
        try:
            if d.client.socket() is None and d.retry_at == 0.0:
                d.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
            else:
                d.client.reconnect()
        except OSError as exc:
            d.retry_at = now + random.uniform(1.0, 5.0)
            log.debug("connect of %s failed: %s", d.device_id, exc)
        else:
            d.retry_at = now + 10.0  # CONNACK due well before this

    def done(self) -> bool:
        cfg = self.config
        return (
            cfg.windows > 0
            and not self._telemetry_mids
            and all(d.sent >= cfg.windows for d in self.devices)
        )

    def run(self, stop: threading.Event, on_tick: Any = None) -> FleetStats:
        """Run until ``stop`` is set, or every device sent ``windows`` and all were acked."""
        self._telemetry_mids: set[tuple[str, int]] = set()
        last_tick = 0.0
        while not stop.is_set() and not self.done():
            for client in list(self._writers):
                client.loop_write()
            for key, _events in self.selector.select(timeout=0.02):
                key.data.loop_read()
            now = time.monotonic()
            if now - last_tick >= 0.2:
                self._tick(now)
                last_tick = now
                if on_tick is not None:
                    on_tick(self.stats)
        self.shutdown()
        return self.stats

    def shutdown(self, flush_seconds: float = 5.0) -> None:
        """Say ``offline`` (the will is for crashes) and disconnect every device."""
        for d in self.devices:
            if d.connected:
                offline = DeviceStatus(
                    device_id=d.device_id, state="offline", agent_version=AGENT_VERSION,
                    session=f"{self.process}-{d.connections}")
                d.client.publish(status_topic(d.device_id), encode(offline), qos=1, retain=True)
        deadline = time.monotonic() + flush_seconds
        while time.monotonic() < deadline and any(
            d.client.want_write() for d in self.devices if d.connected
        ):
            for d in self.devices:
                if d.connected and d.client.want_write():
                    d.client.loop_write()
            time.sleep(0.01)
        for d in self.devices:
            if d.connected:
                d.client.disconnect()
                d.client.loop_write()
            sock = d.client.socket()
            if isinstance(sock, socket.socket):
                self._unregister(sock)
