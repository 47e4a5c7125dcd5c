"""The agent's one MQTT adapter: status, desired, reported and the outbox drain.

Nothing else in the agent talks to paho. Telemetry and events are never
published directly: they go through the :class:`Outbox`, and this module
drains it in order with QoS 1, acknowledging each row on its PUBACK. After every
reconnect the rows the broker acknowledged shortly before the link dropped go out
again (a crashed broker may have lost them; ingest drops the copies).

Status: every connection is a session, ``{process}-{n}``, named by its ``online`` and
by its Last Will (set anew before each connect), so the control plane can tell the end
of an old connection from the start of a new one without trusting the device's clock.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion

from protocols import (
    DesiredState,
    DeviceCommand,
    DeviceStatus,
    ProtocolError,
    ReportedState,
    SignatureError,
    SignedDesiredState,
    commands_topic,
    decode,
    desired_topic,
    encode,
    reported_topic,
    signed_desired_topic,
    status_topic,
    verify_desired,
)
from protocols.reach import RepeatFilter, explain_connect_error

from .config import MqttTarget
from .outbox import Outbox

log = logging.getLogger(__name__)

DesiredHandler = Callable[[DesiredState], None]
RefusedHandler = Callable[[str], None]  # why a desired state was refused (a metric label)
CommandHandler = Callable[[DeviceCommand], None]


class MqttLink:
    """Connects, keeps the device's shadow topics right, and drains the outbox."""

    def __init__(
        self,
        device_id: str,
        target: MqttTarget,
        outbox: Outbox,
        on_desired: DesiredHandler,
        agent_version: str,
        max_inflight: int = 20,
        keepalive: int = 30,
        sessions: bool = True,
        trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
        on_refused: RefusedHandler | None = None,
        on_command: CommandHandler | None = None,
    ) -> None:
        self.device_id = device_id
        # With trusted keys the agent acts only on signed desired states; the plain topic
        # (for agents older than signing) is anyone's to write on an anonymous broker.
        self._keys = dict(trusted_keys or {})
        self._desired_topic = (signed_desired_topic(device_id) if self._keys
                               else desired_topic(device_id))
        self._on_refused = on_refused
        self._target = target
        self._outbox = outbox
        self._on_desired = on_desired
        self._on_command = on_command
        self._agent_version = agent_version
        self._max_inflight = max_inflight
        self._keepalive = keepalive
        # A control plane of the previous protocol refuses the session field.
        self._process = secrets.token_hex(6) if sessions else None
        self._connection = 0
        self._lost_at = time.time()  # a fresh start may follow a broker that lost rows too
        self._resend_from: float | None = None
        self._lock = threading.Lock()
        # Owned by the drain thread: paho mid -> outbox row id of the rows in flight.
        self._inflight: dict[int, int] = {}
        self._acked_mids: deque[int] = deque()
        self._wake = threading.Event()
        self._reported: bytes | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._drainer: threading.Thread | None = None
        self.acked = 0
        self._failures = RepeatFilter(log)

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"parkwatch-agent-{device_id}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if target.username:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            # Always verify the broker (hostname included); a private CA comes from settings.
            client.tls_set(
                ca_certs=str(target.ca_file) if target.ca_file else None,
                certfile=str(target.client_cert) if target.client_cert else None,
                keyfile=str(target.client_key) if target.client_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        # The backoff ceiling differs per agent, so a fleet that lost its broker at one
        # instant does not keep retrying in lockstep (paho's own backoff has no jitter).
        client.reconnect_delay_set(min_delay=1, max_delay=random.randint(20, 40))
        client.max_inflight_messages_set(max_inflight + 10)
        client.on_pre_connect = self._handle_pre_connect
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        self._client = client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _status(self, state: str) -> bytes:
        session = f"{self._process}-{self._connection}" if self._process else None
        msg = DeviceStatus(device_id=self.device_id, state=state,  # type: ignore[arg-type]
                           agent_version=self._agent_version, session=session)
        return encode(msg)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._client.connect_async(self._target.host, self._target.port, self._keepalive)
        self._client.loop_start()
        self._drainer = threading.Thread(target=self._drain, name="mqtt-drain", daemon=True)
        self._drainer.start()

    def stop(self, flush_seconds: float) -> None:
        """Deliver what the outbox holds for up to ``flush_seconds``, say offline, disconnect."""
        deadline = time.monotonic() + flush_seconds
        while time.monotonic() < deadline and self._outbox.count() and self.connected:
            self._outbox.wait_for_change(0.1)
        self._stop.set()
        if self.connected:
            info = self._client.publish(status_topic(self.device_id), self._status("offline"),
                                        qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(1.0, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()
        if self._drainer is not None:
            self._drainer.join(timeout=2)

    # -- outgoing ------------------------------------------------------------------------------
    def publish_reported(self, state: ReportedState) -> None:
        """Publish the reported state (retained); it is re-published on every reconnect."""
        payload = encode(state)
        with self._lock:
            self._reported = payload
        if self.connected:
            self._client.publish(reported_topic(self.device_id), payload, qos=1, retain=True)

    def _drain(self) -> None:
        """Hand outbox rows to paho in id order, at most ``max_inflight`` unacknowledged.

        Acks are resolved here too: paho calls on_publish while holding its own lock,
        so that callback only queues the mid (taking our locks there could deadlock).
        """
        while not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            acked = []
            while self._acked_mids:
                row_id = self._inflight.pop(self._acked_mids.popleft(), None)
                if row_id is not None:
                    acked.append(row_id)
            if acked:
                self._outbox.ack(*acked)
                self.acked += len(acked)
            if not self.connected:
                continue
            with self._lock:
                lost_at, self._resend_from = self._resend_from, None
            if lost_at is not None and (n := self._outbox.resend_acked(lost_at)):
                log.info("sending again %d rows acknowledged before the link dropped", n)
            room = self._max_inflight - len(self._inflight)
            rows = self._outbox.take(room) if room > 0 else []
            for i, row in enumerate(rows):
                info = self._client.publish(row.topic, row.payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("publish of outbox row %d refused: %s", row.id, info.rc)
                    for left in rows[i:]:
                        self._outbox.release(left.id)
                    break
                # NO_CONN: paho keeps QoS 1 messages and sends them after reconnecting.
                self._inflight[info.mid] = row.id
            if rows:
                self._wake.set()

    # -- paho callbacks (paho's network thread) --------------------------------------------
    def _handle_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        """Before every (re)connect: a new session, and a Last Will that names it."""
        self._connection += 1
        client.will_set(status_topic(self.device_id), self._status("offline"), qos=1,
                        retain=True)

    def _handle_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                        reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._failures.warn(f"the broker at {self._target.host}:{self._target.port} refused "
                              f"the connection: {reason}; check the device's broker "
                              "credentials (mqtt_username, mqtt_password) and the ACL")
            return
        self._failures.clear()
        log.info("connected to the broker", extra={"host": self._target.host})
        client.publish(status_topic(self.device_id), self._status("online"), qos=1, retain=True)
        client.subscribe(self._desired_topic, qos=1)
        if self._on_command is not None:  # one-off requests, such as a snapshot
            client.subscribe(commands_topic(self.device_id), qos=1)
        with self._lock:
            reported = self._reported
        if reported is not None:
            client.publish(reported_topic(self.device_id), reported, qos=1, retain=True)
        with self._lock:
            self._resend_from = self._lost_at
        self._connected.set()
        self._wake.set()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` block: the error is the live one.
        exc = sys.exc_info()[1] or ConnectionError("no reason given")
        self._failures.warn(explain_connect_error(
            exc, "the broker", self._target.host, self._target.port, "mqtt_url"))

    def _handle_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                           reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            self._lost_at = time.time()
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker: %s; reconnecting", reason)

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                        reason: Any, properties: Any) -> None:
        self._acked_mids.append(mid)
        self._wake.set()

    def _handle_message(self, client: mqtt.Client, userdata: Any,
                        message: mqtt.MQTTMessage) -> None:
        if message.topic == commands_topic(self.device_id):
            self._command(message)
            return
        if message.topic != self._desired_topic:
            # Only desired (signed, with trusted keys) and commands are subscribed: the plain
            # topic of a session that subscribed before signing, or a broker that replays
            # other retained topics (amqtt did), must not be read as a desired state.
            log.debug("ignored a message on %s: not subscribed", message.topic)
            return
        try:
            if self._keys:
                desired = verify_desired(decode(SignedDesiredState, message.payload), self._keys)
            else:
                desired = decode(DesiredState, message.payload)
            if desired.device_id != self.device_id:
                raise ProtocolError(f"desired state is addressed to {desired.device_id}")
        except ProtocolError as exc:
            reason = "signature" if isinstance(exc, SignatureError) else "invalid"
            log.warning("refused a desired state: %s", exc,
                        extra={"topic": message.topic, "reason": reason})
            if self._on_refused is not None:
                self._on_refused(reason)
            return
        try:
            self._on_desired(desired)
        except Exception:  # a bug downstream must not kill paho's network thread
            log.exception("desired state handler failed")

    def _command(self, message: mqtt.MQTTMessage) -> None:
        try:
            command = decode(DeviceCommand, message.payload)
            if command.device_id != self.device_id:
                raise ProtocolError(f"command is addressed to {command.device_id}")
        except ProtocolError as exc:
            log.warning("ignored invalid command: %s", exc, extra={"topic": message.topic})
            return
        if self._on_command is not None:
            try:
                self._on_command(command)
            except Exception:  # a bug downstream must not kill paho's network thread
                log.exception("command handler failed")
