"""The control plane's MQTT adapter (paho-mqtt 2.x): one broker connection.

In: status, reported, telemetry and events of every device (or one lane's kinds of them:
``lanes``), decoded with ``protocols.decode_for_topic`` in paho's thread and queued to
the ingest pipeline (``batch``): one writer stores runs of telemetry windows and runs of
device messages (statuses, reported states, events) in a transaction each (``store``),
and acknowledges each message (manual PUBACK) only once it is committed, in arrival
order; at most ``max_queued`` are held unacknowledged (paho's thread waits for room, so
the broker keeps the backlog). An invalid payload is logged with its reason, dropped and
acknowledged; a message whose write fails alone is kept as a dead letter (``dead_letter``)
and acknowledged; neither stops the loop.
Out: desired states, retained, QoS 1; a batch returns once the broker acknowledged it
(except where waiting could deadlock: see ``publish_desired_batch``).
Subscriptions are made in ``on_connect``, so every reconnect resubscribes.
"""

from __future__ import annotations

import functools
import logging
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine

from protocols import (
    DesiredState,
    DeviceCommand,
    DeviceStatus,
    ProtocolError,
    SignedDesiredState,
    TelemetryWindow,
    commands_topic,
    decode_for_topic,
    desired_topic,
    encode,
    fleet_subscription,
    parse_device_topic,
    signed_desired_topic,
)
from protocols.reach import RepeatFilter, explain_connect_error
from protocols.topics import TopicKind
from protocols.urls import parse_mqtt_url

from ..config import MqttSecurity
from ..errors import ConfigError
from ..lifecycle import Health
from ..metrics import DESIRED_PUBLISHED, INGEST_RECEIVED, MQTT_CONNECTED, MQTT_RECONNECTS
from ..rollouts import service as rollouts
from ..services.device_messages import DeviceMessage, StatusReceipt
from ..store.db import session_scope
from . import dead_letter
from .batch import INGESTED_KINDS, Inbound, IngestPipeline, count
from .client import IngestClient
from .outgoing import Outgoing, wait_published
from .store import IngestStore

log = logging.getLogger(__name__)
INGEST_KINDS: tuple[TopicKind, ...] = ("status", "reported", "telemetry", "events")
FLUSH_TIMEOUT_S = 5.0  # stop(): how long queued messages may take to be written and acked
PUBACK_TIMEOUT_S = 30.0  # a batch of desired states: how long to wait for the broker
# QoS 1 messages on their way to the broker at once: no limit (paho's default is 20). A
# wave's batch goes out as one write (``publish_many``) instead of refilled a message per
# PUBACK, each refill scanning paho's whole queue; an MQTT 3.1.1 broker acknowledges QoS 1
# as it reads, and ``max_queued_messages`` still bounds what waits for PUBACKs.
MAX_INFLIGHT = 0
# each kind's child looked up once, on its first message (a role that ingests nothing shows none)
_received = functools.cache(INGEST_RECEIVED.labels)


class MqttAdapter:
    """Connects in the background, retries forever, and never lets a message crash it."""

    name = "mqtt"

    def __init__(
        self,
        url: str,
        engine: Engine,
        *,
        client_id: str,
        share_group: str | None = None,
        clean_session: bool = False,
        subscribe: bool = True,
        on_connected: Callable[[MqttAdapter], None] | None = None,
        security: MqttSecurity | None = None,
        batch_size: int = 20,
        linger_s: float = 0.02,
        max_queued: int = 1000,
        retire: bool = False,
        signer: Callable[[DesiredState], SignedDesiredState] | None = None,
        max_queued_messages: int = 10_000,
        kinds: Sequence[TopicKind] = INGEST_KINDS,
        name: str = "mqtt",
    ) -> None:
        try:
            self.endpoint = parse_mqtt_url(url)
        except ProtocolError as exc:
            raise ConfigError(f"mqtt_url: {exc}") from None
        self.engine = engine
        self.share_group = share_group
        self.subscribe = subscribe
        # What this connection subscribes to: every kind, or one lane's (ingest/lanes.py).
        # It stores whatever kind it is handed all the same.
        self.kinds = tuple(kinds)
        self.name = name
        # Retiring a stopped worker's session (ingest/identity.py): take what the broker
        # queued for it, but leave the share group so that nothing new is routed here.
        self.retire = retire
        self.last_activity = time.monotonic()  # a message received or handled
        self._on_connected = on_connected
        self._signer = signer
        # A publisher waits for PUBACKs under the desired-state writers' lock. On SQLite that
        # is the database's only write lock: with ingest in this client, paho's thread may
        # be waiting for ingest to make room, and ingest for that lock. Then it does not
        # wait (one process runs everything on SQLite: the client's queue keeps lock order).
        self._wait_acked = not (subscribe and engine.dialect.name == "sqlite")
        self._connected = threading.Event()
        self._stopping = False
        self._failures = RepeatFilter(log)
        # One series per connection: an ingest process holds two (ingest/lanes.py), and on
        # one shared series a lane's disconnect was hidden by the other's next connect.
        self._connected_gauge = MQTT_CONNECTED.labels(name)
        self._connected_gauge.set(0)
        self.client = IngestClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            manual_ack=True,  # PUBACK once committed (IngestPipeline), not on receipt
        )
        sec = security or MqttSecurity()
        username = sec.username or self.endpoint.username
        if username is not None:
            self.client.username_pw_set(username, sec.password or self.endpoint.password)
        if self.endpoint.tls:
            # Always verify the broker (hostname included); a private CA comes from settings.
            self.client.tls_set(
                ca_certs=str(sec.ca_file) if sec.ca_file else None,
                certfile=str(sec.client_cert) if sec.client_cert else None,
                keyfile=str(sec.client_key) if sec.client_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        # paho refuses a publish beyond it (a desired state then waits: publish_desired_batch)
        self.client.max_queued_messages_set(max_queued_messages)
        self._outgoing = Outgoing(max_queued_messages)
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.on_connect = self._handle_connect
        self.client.on_connect_fail = self._handle_connect_fail
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_message = self._handle_message
        self.client.on_received = self._receive
        self.client.on_subscribe = self._handle_subscribe
        self._subscribe_mid: int | None = None
        self.store = IngestStore(engine, self)
        # Bumped on every connect and disconnect: a PUBACK goes back only on the connection
        # its PUBLISH came on (after a reconnect the broker resends, maybe reusing the mid).
        self._connection = 0
        self._ack_lock = threading.Lock()
        self.pipeline = IngestPipeline(
            self._write_windows, self._handle, self._acknowledge,
            batch_size=batch_size, linger_s=linger_s, max_queued=max_queued,
            write_device=self._write_device, keep_failed=self._keep_failed,
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self.subscribe:
            self.pipeline.start()
        self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Write and acknowledge what is queued (at most FLUSH_TIMEOUT_S; not at all while
        the store is down), then disconnect; the broker resends anything unacknowledged."""
        self._stopping = True
        self.pipeline.stop(FLUSH_TIMEOUT_S)
        self._next_connection()  # a write still finishing acknowledges nothing now
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
        self._connected_gauge.set(0)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def health(self) -> Health:
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        if self.connected:
            return Health(True, f"connected to {where}")
        why = self._failures.last
        return Health(False, f"not connected to {where} (retrying)" + (f": {why}" if why else ""))

    def _handle_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` block: the error is the live one.
        exc = sys.exc_info()[1] or ConnectionError("no reason given")
        self._failures.warn(explain_connect_error(
            exc, "the broker", self.endpoint.host, self.endpoint.port,
            "mqtt_url (PARKWATCH_MQTT_URL)"))

    def wait_connected(self, timeout: float) -> bool:
        """Connected and, when subscribing, subscribed: the broker confirmed the
        subscriptions, so a message published from now on reaches this adapter."""
        return self._connected.wait(timeout)

    def _handle_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._failures.warn(
                f"the broker at {self.endpoint.host}:{self.endpoint.port} refused the control "
                f"plane's connection {self.name!r}: {reason}; check its mqtt_username / "
                "mqtt_password (PARKWATCH_MQTT_*; mqtt_control_* for 'mqtt-control') and the "
                "broker's password file and ACL")
            return
        self._failures.clear()
        self._next_connection()
        self._subscribe_mid = None
        if self.subscribe:
            # Shared subscriptions ($share/<group>/...) work on MQTT 3.1.1 with Mosquitto 2,
            # EMQX and HiveMQ; paho passes the filter through unchanged.
            if self.retire:
                client.unsubscribe([fleet_subscription(kind, self.share_group)
                                    for kind in INGEST_KINDS])
            else:
                # A persistent session kept from before the lanes may hold the other
                # lane's subscriptions: leave them to that lane's connection.
                others = [kind for kind in INGEST_KINDS if kind not in self.kinds]
                if others:
                    client.unsubscribe([fleet_subscription(kind, self.share_group)
                                        for kind in others])
                topics = [(fleet_subscription(kind, self.share_group), 1)
                          for kind in self.kinds]
                # Ready only at the SUBACK: a window published between the CONNACK and
                # the broker taking the subscription would be routed to nobody.
                _rc, self._subscribe_mid = client.subscribe(topics)  # type: ignore[arg-type]
        if self._subscribe_mid is None:
            self._connected.set()
        self._connected_gauge.set(1)
        MQTT_RECONNECTS.inc()
        log.info(
            "connected to broker", extra={"broker": f"{self.endpoint.host}:{self.endpoint.port}"}
        )
        if self._on_connected is not None:
            # Its own thread: the hook publishes and waits for PUBACKs, which this (paho's
            # network) thread reads.
            threading.Thread(target=self._run_on_connected, name="mqtt-on-connect",
                             daemon=True).start()

    def _run_on_connected(self) -> None:
        assert self._on_connected is not None
        try:
            self._on_connected(self)
        except Exception:
            log.exception("on-connect hook failed")

    def _handle_subscribe(self, _client: paho.Client, _userdata: Any, mid: int,
                          reasons: list[Any], _props: Any) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            self._failures.warn(
                f"the broker at {self.endpoint.host}:{self.endpoint.port} refused the "
                f"control plane's subscriptions ({', '.join(refused)}); check the broker's "
                "ACL for the control plane's user (parkwatch mqtt acl)")
            return
        self._connected.set()

    def _handle_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._next_connection()
        self._subscribe_mid = None
        self._connected.clear()
        self._connected_gauge.set(0)
        if self._stopping:
            log.info("disconnected from broker")
        else:
            log.warning("disconnected from broker (%s); reconnecting", reason)

    # -- out -------------------------------------------------------------------------------
    def publish_desired(self, state: DesiredState) -> None:
        """Publish retained, QoS 1, signed (``desired_signed``, what agents act on) and plain
        (``desired``, for agents older than signing: without the fields they would refuse).
        While disconnected paho queues both and sends them on reconnect. The rollouts
        publish through ``publish_desired_batch``, which waits for room in a full queue."""
        if self._queue_desired([state]):
            log.error("desired state not queued: the client's outgoing queue is full "
                      "(mqtt_max_queued_messages); it goes out with the re-publish on connect",
                      extra={"device_id": state.device_id, "revision": state.revision})

    def publish_desired_batch(self, states: Sequence[DesiredState]) -> list[str]:
        """Publish each state as ``publish_desired`` does, in order, until paho's outgoing
        queue is full; return the ids of the devices not queued (send them again after
        ``wait_for_room``). Returns once the broker has acknowledged every message queued
        (the caller holds the writers' lock meanwhile, so no newer state of these devices
        can reach the broker first). Not while disconnected: paho sends the queue on
        reconnect, and the re-publish on connect follows it."""
        sent: list[paho.MQTTMessageInfo] = []
        left = self._queue_desired(states, sent)
        if self._wait_acked:
            wait_published(sent, lambda: self.connected, PUBACK_TIMEOUT_S)
        return left

    def wait_for_room(self, timeout: float) -> bool:
        """Wait until at most half of paho's outgoing queue holds desired states not yet
        acknowledged. False when disconnected (paho sends its queue on reconnect, and the
        re-publish on connect sends every device's state) or when the broker acknowledged
        nothing for ``timeout`` seconds (a dead link: the keepalive reconnects)."""
        return self._outgoing.wait_for_room(lambda: self.connected, timeout)

    def _queue_desired(self, states: Sequence[DesiredState],
                       sent: list[paho.MQTTMessageInfo] | None = None) -> list[str]:
        """Queue the states' messages in one ``publish_many``; the ids of the devices not
        queued, from the first one the full queue refused (``sent``: the infos queued)."""
        messages: list[tuple[str, bytes]] = []
        for state in states:
            plain = state.model_copy(update={"epoch": 0, "rollback": False})
            messages.append((desired_topic(state.device_id), encode(plain)))
            if self._signer is not None:
                messages.append((signed_desired_topic(state.device_id),
                                 encode(self._signer(state))))
        infos = self.client.publish_many(messages, retain=True)
        queued = [i for i in infos if i.rc != paho.MQTT_ERR_QUEUE_SIZE]
        self._outgoing.extend(queued)
        if sent is not None:
            sent += queued
        per_state = len(messages) // len(states) if states else 1
        done = len(queued) // per_state  # states whose every message was queued
        DESIRED_PUBLISHED.inc(done)
        return [s.device_id for s in states[done:]]

    def publish_command(self, command: DeviceCommand) -> None:
        """A one-off request (QoS 1, not retained: an offline device never gets it late)."""
        info = self.client.publish(commands_topic(command.device_id), encode(command), qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            log.error("command not queued: %s", paho.error_string(info.rc),
                      extra={"device_id": command.device_id, "command_id": command.command_id})

    # -- in --------------------------------------------------------------------------------
    def _handle_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        """A message paho parsed (the client parses most: ``_receive``)."""
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "<topic not UTF-8>"
        self._receive(topic, msg.payload, msg.mid, msg.qos, bool(msg.retain))

    def _receive(self, topic: str, payload: bytes | bytearray, mid: int, qos: int,
                 retain: bool) -> None:
        """paho's thread: decode, validate and queue; the pipeline writes and acknowledges."""
        self.last_activity = time.monotonic()
        kind, device_id = "unknown", ""
        message: Any = None
        try:
            device_id, kind = parse_device_topic(topic)
            if kind not in INGEST_KINDS:
                count(kind, "ignored")
            else:
                if kind in INGESTED_KINDS:
                    _received(kind).inc()
                message = decode_for_topic(kind, payload)
                if getattr(message, "device_id", device_id) != device_id:
                    raise ProtocolError(
                        f"payload device_id {getattr(message, 'device_id', '')!r} does not "
                        "match its topic"
                    )
                if isinstance(message, DeviceStatus):
                    message = StatusReceipt(message, retained=retain)
        except ProtocolError as exc:
            log.warning("invalid MQTT message dropped: %s", exc, extra={"topic": topic[:200]})
            count(kind, "invalid")
            message = None
        except Exception:
            log.exception("MQTT message could not be decoded", extra={"topic": topic[:200]})
            count(kind, "error")
            message = None
        # Every message goes through the queue, so PUBACKs leave in arrival order.
        self.pipeline.submit(Inbound(kind, device_id, message, mid, qos, self._connection))

    def _next_connection(self) -> None:
        with self._ack_lock:
            self._connection += 1

    def _acknowledge(self, items: Sequence[Inbound]) -> None:
        """PUBACK committed messages, in order, in one write (QoS 2 is not subscribed)."""
        self.last_activity = time.monotonic()
        with self._ack_lock:  # no reconnect between the check and the PUBACKs
            self.client.ack_many([item.mid for item in items
                                  if item.qos == 1 and item.connection == self._connection])

    # The store's side, here so that a test can slow it down.
    def _write_windows(self, windows: Sequence[TelemetryWindow]) -> Counter[str]:
        return self.store.write_windows(windows)

    def _write_device(self, messages: Sequence[DeviceMessage]) -> Counter[tuple[str, str]]:
        return self.store.write_device(messages)

    def _keep_failed(self, item: Inbound, error: str) -> None:
        dead_letter.keep(self.engine, kind=item.kind, device_id=item.device_id,
                         message=item.message, error=error,
                         received_at=datetime.fromtimestamp(item.received, UTC))

    def _handle(self, kind: str, message: DeviceMessage) -> str:
        """A device message alone (every kind the adapter receives is written in runs)."""
        outcomes = self._write_device([message])
        return next(iter(outcomes))[1] if outcomes else "error"


def republish_desired(adapter: MqttAdapter) -> None:
    """On (re)connect, publish every stored desired state again (an embedded broker
    forgets retained messages when it restarts; a retained duplicate is harmless)."""
    with session_scope(adapter.engine) as session:
        count = rollouts.republish_desired(session, adapter)
    if count:
        log.info("re-published desired states", extra={"count": count})
