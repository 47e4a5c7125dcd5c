"""The PUBLISH packets ``publish_many`` builds: MQTT 3.1.1's remaining-length encoding at
its boundaries (the specification's table 2.4) and a QoS 1 packet's layout."""

from __future__ import annotations

import pytest

from control_plane.ingest.publish_many import publish_packet, remaining_length


@pytest.mark.parametrize(("n", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_as_the_specification_encodes_it(n: int, encoded: bytes) -> None:
    assert remaining_length(n) == encoded


def test_a_retained_qos1_publish_packet() -> None:
    packet = publish_packet(b"a/b", b"xyz", 0x1234, retain=True)
    # PUBLISH, QoS 1, retain; 2 + 3 topic + 2 packet id + 3 payload = 10
    assert packet == b"\x33\x0a\x00\x03a/b\x12\x34xyz"
    assert publish_packet(b"a/b", b"", 1, retain=False, dup=True)[0] == 0x3A
