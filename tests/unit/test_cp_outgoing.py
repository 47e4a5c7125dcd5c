"""The desired-state messages an MQTT adapter remembers: about the unacknowledged ones."""

from __future__ import annotations

import paho.mqtt.client as paho

from control_plane.ingest.outgoing import Outgoing


def infos(n: int, *, acknowledged: bool) -> list[paho.MQTTMessageInfo]:
    out = []
    for mid in range(n):
        info = paho.MQTTMessageInfo(mid)
        if acknowledged:
            info._set_as_published()
        out.append(info)
    return out


def test_acknowledged_messages_are_forgotten_as_new_ones_come() -> None:
    outgoing = Outgoing(limit=10)
    for info in infos(1000, acknowledged=True):
        outgoing.add(info)
    assert len(outgoing) == 1  # the last one added


def test_behind_a_stuck_message_the_list_stays_bounded() -> None:
    outgoing = Outgoing(limit=10)
    outgoing.add(infos(1, acknowledged=False)[0])  # never acknowledged
    for info in infos(1000, acknowledged=True):
        outgoing.add(info)
    assert len(outgoing) <= 2 * 10 + 1


def test_room_while_half_the_limit_waits_none_when_disconnected() -> None:
    outgoing = Outgoing(limit=10)
    for info in infos(5, acknowledged=False):
        outgoing.add(info)
    assert outgoing.wait_for_room(lambda: True, timeout=0.1)
    outgoing.add(infos(1, acknowledged=False)[0])
    assert not outgoing.wait_for_room(lambda: False, timeout=5)  # disconnected: at once
    assert not outgoing.wait_for_room(lambda: True, timeout=0.3)  # nothing acknowledged
