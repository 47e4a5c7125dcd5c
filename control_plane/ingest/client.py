"""The control plane's paho client: a burst of packets read per wake-up, and a committed
batch's PUBACKs sent as one write.

paho 2.x (``Client.loop_read``) reads as many packets per ``select`` as it has QoS 2 and
outgoing messages pending, at least one. Ingest acknowledges by hand and receives QoS 1,
so paho read one message per ``select``, each with its keepalive check, loop bookkeeping
and three or four ``recv`` calls (command byte, each length byte, the rest). Here a
wake-up makes one ``recv`` of up to ``RECV_BYTES`` and reads every packet in it. And
``Client.ack`` queues a 4-byte packet per message, each with a byte written to wake
paho's loop; ``ack_many`` queues a batch's PUBACKs as one packet.

Both use paho internals (``_packet_read``, ``_sock_recv``, ``_packet_queue``, ...), stable
through paho 2.x; ``SUPPORTED`` says whether this paho has them, and where it does not
the client behaves as plain paho (``tests/integration/test_cp_ingest_client.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

RECV_BYTES = 65536
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2), packet id
PUBACK = 0x40
SUPPORTED = all(hasattr(paho.Client, name)
                for name in ("_packet_read", "_sock_recv", "_packet_queue", "_loop_rc_handle",
                             "_create_socket"))


class IngestClient(paho.Client):
    """``paho.Client`` with burst reads and ``ack_many``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = b""  # read from the socket, not parsed yet
        self._offset = 0

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
        while self._sock is not None:
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if self._offset >= len(self._buffer):
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_NO_CONN

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
