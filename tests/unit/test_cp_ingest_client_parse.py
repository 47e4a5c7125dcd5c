"""The ingest client's own PUBLISH parsing on bytes as a read left them (no socket): whole
QoS 0 and 1 packets are handed over with paho's reading of them; anything else stops it
where paho takes over."""

from __future__ import annotations

import pytest
from paho.mqtt import _packet
from paho.mqtt.client import MQTTv311
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.ingest.client import SUPPORTED, IngestClient

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="this paho lacks the internals")
Got = tuple[str, bytes, int, int, bool]
PINGRESP = b"\xd0\x00"


def publish(topic: bytes, payload: bytes, qos: int, mid: int, retain: bool = False) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    body += (mid.to_bytes(2, "big") if qos else b"") + payload
    length, n = b"", len(body)
    while True:  # the remaining length, 7 bits a byte (MQTT 3.1.1 section 2.2.3)
        byte, n = n & 127, n >> 7
        length += bytes([byte | (128 if n else 0)])
        if not n:
            break
    return bytes([0x30 | qos << 1 | retain]) + length + body


def paho_reads(packet: bytes) -> Got:
    """What paho's own decoder makes of one whole packet."""
    i = 1
    while packet[i] & 128:
        i += 1
    r = _packet.decode_publish(packet[0], packet[i + 1 :], MQTTv311)
    return (r.topic.decode(), bytes(r.payload), r.mid, r.qos, bool(r.retain))


def read(data: bytes) -> tuple[list[Got], int]:
    """What one pass hands over, and the offset where paho goes on."""
    client = IngestClient(CallbackAPIVersion.VERSION2, client_id="parse", manual_ack=True)
    got: list[Got] = []
    client.on_received = lambda *message: got.append(message)
    client._buffer, client._offset = data, 0
    client._read_publishes()
    return got, client._offset


def test_whole_publishes_are_handed_over_as_paho_reads_them() -> None:
    # remaining lengths of one, two and three bytes; QoS 0 (no packet id) and retained
    packets = [publish(b"parkwatch/v1/devices/cam-1/telemetry", b"x" * 60, 1, 7),
               publish(b"parkwatch/v1/devices/cam-2/status", b"{}", 0, 0, retain=True),
               publish(b"parkwatch/v1/devices/cam-3/telemetry", bytes(range(256)) * 80, 1,
                       65535),
               publish("parkwatch/v1/devices/caméra/events".encode(), b"", 1, 1)]
    got, offset = read(b"".join(packets))
    assert got == [paho_reads(p) for p in packets]
    assert got[1] == ("parkwatch/v1/devices/cam-2/status", b"{}", 0, 0, True)
    assert offset == sum(map(len, packets))


LONG = publish(b"parkwatch/v1/devices/cam-1/telemetry", b"y" * 300, 1, 9)


@pytest.mark.parametrize("then", [
    PINGRESP,  # another kind of packet
    publish(b"parkwatch/v1/devices/cam-1/telemetry", b"{}", 2, 9),  # QoS 2 needs PUBREC
    publish(b"parkwatch/v1/devices/\xff/telemetry", b"{}", 1, 9),  # topic not UTF-8
    b"\x32\xff\xff\xff\xff\x01",  # a remaining length of five bytes: malformed
])
def test_paho_takes_over_at_a_packet_it_must_read(then: bytes) -> None:
    first = publish(b"parkwatch/v1/devices/cam-1/telemetry", b"{}", 1, 3)
    after = publish(b"parkwatch/v1/devices/cam-1/telemetry", b"{}", 1, 4)
    got, offset = read(first + then + after)
    assert [m[2] for m in got] == [3]  # nothing after the packet paho reads
    assert offset == len(first)


@pytest.mark.parametrize("cut", [len(LONG) - 1, 2, 1])  # in its body, in its length
def test_a_packet_cut_by_the_end_of_a_read_is_left_to_paho(cut: int) -> None:
    first = publish(b"parkwatch/v1/devices/cam-1/telemetry", b"{}", 1, 3)
    got, offset = read(first + LONG[:cut])
    assert [m[2] for m in got] == [3]
    assert offset == len(first)
