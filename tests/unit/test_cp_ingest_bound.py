"""The ingest pipeline holds at most ``max_queued`` unacknowledged messages: a submit beyond
it waits (paho's thread stops reading) until the writer acknowledges, or until stop."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from control_plane.ingest.batch import Inbound, IngestPipeline
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow


class GatedStore:
    """Writes only while ``gate`` is open; records what was acknowledged."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.acked: list[int] = []

    def write_windows(self, windows: Sequence[TelemetryWindow]) -> Counter[str]:
        self.gate.wait(10)
        return Counter(stored=len(windows))

    def handle(self, _kind: str, _message: Any) -> str:
        return "applied"

    def ack(self, items: Sequence[Inbound]) -> None:
        self.acked.extend(item.mid for item in items)


def window(mid: int) -> Inbound:
    return Inbound("telemetry", "cam-1", telemetry_window("cam-1", mid), mid, 1, 0)


def submitting(p: IngestPipeline, mids: range) -> threading.Thread:
    """paho's network thread, handing over messages as they arrive."""
    thread = threading.Thread(target=lambda: [p.submit(window(m)) for m in mids], daemon=True)
    thread.start()
    return thread


def test_submit_waits_for_room_and_nothing_is_lost() -> None:
    store = GatedStore()
    p = IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=2,
                       linger_s=0, max_queued=4)
    p.start()
    paho_thread = submitting(p, range(1, 21))
    paho_thread.join(0.5)
    assert paho_thread.is_alive() and p.held == 4  # waits: the store holds the writer
    store.gate.set()
    paho_thread.join(10)
    assert not paho_thread.is_alive()
    assert p.stop(timeout=10) is True
    assert store.acked == list(range(1, 21)) and p.held == 0


def test_stop_releases_a_waiting_submit_and_leaves_the_rest_to_the_broker() -> None:
    store = GatedStore()
    p = IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=2,
                       linger_s=0, max_queued=2)
    p.start()
    paho_thread = submitting(p, range(1, 11))
    paho_thread.join(0.5)
    assert paho_thread.is_alive()
    stopper = threading.Thread(target=p.stop, args=(0.2,), daemon=True)
    stopper.start()
    paho_thread.join(10)
    assert not paho_thread.is_alive()  # stop woke it; the rest was dropped unacknowledged
    store.gate.set()
    stopper.join(15)
    assert len(store.acked) <= 2 and p.held == 0


def test_a_pipeline_not_started_never_waits() -> None:
    store = GatedStore()
    store.gate.set()
    p = IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=2,
                       linger_s=0, max_queued=2)
    for mid in range(1, 6):
        p.submit(window(mid))  # the caller drains it itself
    p.drain()
    assert store.acked == [1, 2, 3, 4, 5]


def test_max_queued_below_the_batch_size_is_refused() -> None:
    store = GatedStore()
    with pytest.raises(ValueError, match="max_queued"):
        IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=10,
                       max_queued=5)
