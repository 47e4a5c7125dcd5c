"""The control plane's paho client: a burst of packets read per wake-up, the PUBLISH
packets among them parsed here, and a committed batch's PUBACKs sent as one write.

paho 2.x (``Client.loop_read``) reads as many packets per ``select`` as it has QoS 2 and
outgoing messages pending, at least one. Ingest acknowledges by hand and receives QoS 1,
so paho read one message per ``select``, each with its keepalive check, loop bookkeeping
and three or four ``recv`` calls (command byte, each length byte, the rest). Here a
wake-up makes one ``recv`` of up to ``RECV_BYTES`` and reads every packet in it. And
``Client.ack`` queues a 4-byte packet per message, each with a byte written to wake
paho's loop; ``ack_many`` queues a batch's PUBACKs as one packet.

With ``on_received`` set, every whole QoS 0 or 1 PUBLISH packet of an MQTT 3.1.1
connection in what a wake-up read is parsed here and handed over as (topic, payload,
packet id, QoS, retain): paho read each one in three or four reads of its buffer, built
an ``MQTTMessage`` (its topic decoded three times, a log call) and matched its topic
against the per-topic callbacks under two locks, about half of the thread's CPU a
message. The broker's PUBACKs among them (of desired states: a wave is thousands) go to
paho's bookkeeping without its per-packet reads (``publish_many.take_pubacks``). Any
other packet, one cut by the end of a read, a QoS 2 one or a topic that is not UTF-8
goes through paho as before (``on_message``), in order.

Both use paho internals (``_packet_read``, ``_sock_recv``, ``_packet_queue``, ...), stable
through paho 2.x; ``SUPPORTED`` says whether this paho has them, and where it does not
the client behaves as plain paho (``tests/integration/test_cp_ingest_client.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from .publish_many import PublishMany

RECV_BYTES = 65536
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2), packet id
PUBACK = 0x40
PUBLISH = 0x30
# A PUBLISH handed over: topic, payload, packet id (0 for QoS 0), QoS, retain
Received = Callable[[str, bytes, int, int, bool], None]
SUPPORTED = all(hasattr(paho.Client, name)
                for name in ("_packet_read", "_sock_recv", "_packet_queue", "_loop_rc_handle",
                             "_create_socket"))


class IngestClient(PublishMany):
    """``paho.Client`` with burst reads, ``ack_many`` and ``publish_many``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = b""  # read from the socket, not parsed yet
        self._offset = 0
        self.on_received: Received | None = None

    def _create_socket(self) -> Any:
        self._buffer, self._offset = b"", 0  # a new connection: nothing of the old one
        return super()._create_socket()

    def _sock_recv(self, bufsize: int) -> bytes:
        if not SUPPORTED:
            return super()._sock_recv(bufsize)
        start = self._offset
        if start >= len(self._buffer):
            # raises BlockingIOError when there is nothing (paho: MQTT_ERR_AGAIN)
            data = super()._sock_recv(max(bufsize, RECV_BYTES))
            if len(data) <= bufsize:
                return data
            self._buffer, start = data, 0
        self._offset = start + bufsize
        return self._buffer[start:self._offset]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Every packet in what one ``recv`` got (paho's ``select`` does not see what is
        buffered here), then back to the loop: a further ``recv`` now would most often
        find nothing, and cost a system call and an exception a wake-up."""
        if not SUPPORTED:
            return super().loop_read(max_packets)
        fast = self.on_received is not None and self._protocol != paho.MQTTv5
        while self._sock is not None:
            rc = self._packet_read()  # the first packet of a read (the read itself) by paho
            if rc > 0:
                return self._loop_rc_handle(rc)
            if fast and self._in_packet["command"] == 0:  # paho is not inside a packet
                self._read_publishes()
            if self._offset >= len(self._buffer):
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_NO_CONN

    def _read_publishes(self) -> None:
        """Hand over each whole QoS 0 or 1 PUBLISH from the buffer's offset on, up to the
        first packet that paho should read (MQTT 3.1.1 section 3.3)."""
        handler = self.on_received
        assert handler is not None
        buf, end = self._buffer, len(self._buffer)
        at = start = self._offset
        while at < end:
            first = buf[at]
            if first == PUBACK:  # the broker's answers to what this client published
                taken = self.take_pubacks(buf, at)
                if taken == at:
                    break  # cut by the end of the read: paho's
                self._offset = at = taken
                continue
            qos = (first >> 1) & 3
            if first & 0xF0 != PUBLISH or qos > 1:
                break
            length, shift, i = 0, 0, at + 1
            while i < end and i - at <= 4:  # the remaining length: 1 to 4 bytes
                length |= (buf[i] & 127) << shift
                shift += 7
                i += 1
                if not buf[i - 1] & 128:
                    break
            else:
                break  # cut by the end of the read, or malformed: paho's
            stop = i + length
            topic_end = i + 2 + int.from_bytes(buf[i : i + 2], "big")
            body = topic_end + (2 if qos else 0)
            if stop > end or body > stop:
                break
            try:
                topic = buf[i + 2 : topic_end].decode()
            except UnicodeDecodeError:
                break
            mid = int.from_bytes(buf[topic_end:body], "big") if qos else 0
            self._offset = at = stop  # taken, even if the handler raises (as paho does)
            with self._in_callback_mutex:
                handler(topic, buf[body:stop], mid, qos, bool(first & 1))
        if at != start:
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each QoS 1 message of ``mids``, in order (``manual_ack`` clients)."""
        if not mids:
            return
        if not SUPPORTED:
            for mid in mids:
                self.ack(mid, 1)
            return
        packet = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
        self._packet_queue(PUBACK, packet, 0, 0)
