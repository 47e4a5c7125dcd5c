"""Many QoS 1 messages queued at once, their PUBLISH packets written as one packet, and
the broker's PUBACKs taken a read at a time.

A wave of desired states is two retained QoS 1 messages a device. Through
``Client.publish`` each one built its packet alone, took paho's locks, queued an entry
and wrote a byte to wake paho's network thread, which then sent it in a ``send`` of its
own; each PUBACK was read in three or four reads of paho's buffer, decoded and handled
under two locks. ``publish_many`` keeps paho's bookkeeping (every message in
``_out_messages`` with its ``MQTTMessageInfo``, so acknowledgement, the queue limit and
the resend after a reconnect work as for ``publish``) and queues the batch's packets as
one entry: one wake-up and a few ``send`` calls for a batch. ``take_pubacks`` hands the
PUBACKs of what one read got to paho's own bookkeeping, without its per-packet reads.

Uses paho internals (``_out_messages``, ``_packet_queue``, ``_do_on_publish``, ...), as
``client.py`` does; where they are missing ``publish_many`` publishes one at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

PUBLISH = 0x30
PUBACK = 0x40
_MID = struct.Struct("!H")
BULK = all(hasattr(paho.Client, name)
           for name in ("_mid_generate", "_packet_queue", "_do_on_publish"))
_STATE = ("_out_messages", "_out_message_mutex", "_inflight_messages", "_max_inflight_messages",
          "_max_queued_messages", "_sock", "_protocol")


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length (1 to 4 bytes)."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, mid: int, retain: bool,
                   dup: bool = False) -> bytes:
    """A QoS 1 PUBLISH packet of MQTT 3.1.1 (section 3.3)."""
    command = PUBLISH | (dup << 3) | 2 | retain
    length = 2 + len(topic) + 2 + len(payload)
    return b"".join((bytes((command,)), remaining_length(length), _MID.pack(len(topic)), topic,
                     _MID.pack(mid), payload))


class PublishMany(paho.Client):
    """``paho.Client`` with ``publish_many`` and ``take_pubacks``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bulk = BULK and all(hasattr(self, name) for name in _STATE)

    def publish_many(self, messages: Sequence[tuple[str, bytes]], *,
                     retain: bool = False) -> list[paho.MQTTMessageInfo]:
        """QoS 1 ``publish`` of each (topic, payload) in order, as one queued packet; the
        infos of those queued and, where the queue was full, that one's (its ``rc``
        ``MQTT_ERR_QUEUE_SIZE``: the rest were not tried)."""
        if not self._bulk or self._protocol == paho.MQTTv5:
            return self._one_by_one(messages, retain)
        infos: list[paho.MQTTMessageInfo] = []
        packets: list[bytes] = []
        now = paho.time_func()
        with self._out_message_mutex:
            connected = self._sock is not None
            for topic, payload in messages:
                topic_bytes = topic.encode()
                mid = self._mid_generate()
                message = paho.MQTTMessage(mid, topic_bytes)
                message.timestamp, message.payload = now, payload
                message.qos, message.retain, message.dup = 1, retain, False
                infos.append(message.info)
                full = 0 < self._max_queued_messages <= len(self._out_messages)
                if full or mid in self._out_messages:
                    message.info.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
                    break
                self._out_messages[mid] = message
                if not connected:  # sent by paho's resend after it connects, as publish does
                    message.state = paho.mqtt_ms_publish
                    message.info.rc = MQTTErrorCode.MQTT_ERR_NO_CONN
                    continue
                message.info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
                limit = self._max_inflight_messages
                if limit and self._inflight_messages >= limit:
                    message.state = paho.mqtt_ms_queued  # sent as PUBACKs make room
                    continue
                self._inflight_messages += 1
                message.state = paho.mqtt_ms_wait_for_puback
                packets.append(publish_packet(topic_bytes, payload, mid, retain))
            if packets:
                self._packet_queue(PUBLISH | 2, b"".join(packets), 0, 1)
        return infos

    def _one_by_one(self, messages: Sequence[tuple[str, bytes]],
                    retain: bool) -> list[paho.MQTTMessageInfo]:
        infos = []
        for topic, payload in messages:
            infos.append(self.publish(topic, payload, qos=1, retain=retain))
            if infos[-1].rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                break
        return infos

    def take_pubacks(self, buf: bytes, at: int) -> int:
        """Handle the whole PUBACKs (MQTT 3.1.1: 4 bytes each) in ``buf`` from ``at`` on, as
        paho does; where the first other packet starts."""
        end = len(buf)
        answer: tuple[ReasonCode, Properties] | None = None  # an MQTT 3.1.1 PUBACK's: success
        while at + 4 <= end and buf[at] == PUBACK and buf[at + 1] == 2:
            mid = (buf[at + 2] << 8) | buf[at + 3]
            at += 4
            with self._out_message_mutex:
                if mid in self._out_messages:
                    if answer is None:
                        answer = (ReasonCode(PacketTypes.PUBACK),
                                  Properties(PacketTypes.PUBACK))  # type: ignore[no-untyped-call]
                    self._do_on_publish(mid, *answer)
        return at


__all__ = ["BULK", "PublishMany", "publish_packet", "remaining_length"]
