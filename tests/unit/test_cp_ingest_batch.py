"""The ingest pipeline's own logic, with a fake store: batching of consecutive windows,
acknowledgement order, one-by-one fallback and retries of transient store errors."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from control_plane.ingest.batch import Inbound, IngestPipeline
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow


class FakeStore:
    """Records writes; ``busy`` transient failures first, then refuses window seq 13."""

    def __init__(self, busy: int = 0) -> None:
        self.busy = busy
        self.batches: list[list[int]] = []
        self.messages: list[str] = []
        self.acked: list[int] = []
        self.tried = threading.Event()

    def write_windows(self, windows: Sequence[TelemetryWindow]) -> Counter[str]:
        self.tried.set()
        if self.busy:
            self.busy -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        if any(w.seq == 13 for w in windows):
            raise IntegrityError("INSERT", {}, Exception("poisoned"))
        self.batches.append([w.seq for w in windows])
        return Counter(stored=len(windows))

    def handle(self, kind: str, message: Any) -> str:
        self.messages.append(kind)
        return "applied"

    def ack(self, items: Sequence[Inbound]) -> None:
        self.acked.extend(item.mid for item in items)


def window(mid: int, seq: int | None = None) -> Inbound:
    return Inbound("telemetry", "cam-1", telemetry_window("cam-1", seq or mid), mid, 1, 0)


def other(mid: int) -> Inbound:
    return Inbound("status", "cam-1", object(), mid, 1, 0)


def invalid(mid: int) -> Inbound:
    return Inbound("telemetry", "cam-1", None, mid, 1, 0)


def pipeline(store: FakeStore, batch_size: int = 20) -> IngestPipeline:
    return IngestPipeline(store.write_windows, store.handle, store.ack,
                          batch_size=batch_size, linger_s=0)


def test_consecutive_windows_share_a_write_and_acks_keep_arrival_order() -> None:
    store = FakeStore()
    p = pipeline(store, batch_size=8)
    for item in [window(1), window(2), other(3), invalid(4), window(5), window(6), window(7),
                 window(8), window(9), window(10)]:
        p.submit(item)
    p.drain()
    assert store.batches == [[1, 2], [5, 6, 7, 8], [9, 10]]  # batch_size 8 cuts after mid 8
    assert store.messages == ["status"]
    assert store.acked == list(range(1, 11))


def test_a_poisoned_window_is_written_alone_and_the_rest_stored() -> None:
    store = FakeStore()
    p = pipeline(store)
    for mid in range(10, 16):
        p.submit(window(mid))
    p.drain()
    assert store.batches == [[10], [11], [12], [14], [15]]  # 13 refused, the rest one by one
    assert store.acked == list(range(10, 16))  # the failed one is acknowledged too


def test_transient_errors_are_retried_before_anything_is_acked() -> None:
    store = FakeStore(busy=3)
    p = pipeline(store)
    p.submit(window(1))
    p.submit(window(2))
    p.drain()
    assert store.batches == [[1, 2]] and store.acked == [1, 2]


def test_stop_while_the_store_is_down_acknowledges_nothing() -> None:
    store = FakeStore(busy=10**9)
    p = pipeline(store)
    p.start()
    for mid in range(1, 6):
        p.submit(window(mid))
    assert store.tried.wait(10)
    assert p.stop(timeout=10) is False
    assert store.acked == [] and store.batches == []
    p.submit(window(6))  # after stop: dropped, left to the broker
    assert store.acked == []


def test_rejects_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError):
        IngestPipeline(FakeStore().write_windows, FakeStore().handle, FakeStore().ack,
                       batch_size=0)


class DeviceStore(FakeStore):
    """Also takes runs of device messages (strings here): ``busy`` transient failures
    first, then refuses the message "poison"."""

    def __init__(self, busy: int = 0) -> None:
        super().__init__()
        self.device_busy = busy
        self.device_runs: list[list[str]] = []
        self.acked_at_write: list[list[int]] = []

    def write_device(self, messages: Sequence[Any]) -> Counter[tuple[str, str]]:
        self.acked_at_write.append(list(self.acked))
        if self.device_busy:
            self.device_busy -= 1
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        if "poison" in messages:
            raise IntegrityError("UPDATE", {}, Exception("poisoned"))
        self.device_runs.append(list(messages))
        return Counter({("status", "applied"): len(messages)})


def device(kind: str, mid: int, message: str = "m") -> Inbound:
    return Inbound(kind, "cam-1", message, mid, 1, 0)


def test_device_messages_of_every_kind_share_a_write_acknowledged_after_it() -> None:
    store = DeviceStore(busy=2)
    p = IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=20,
                       linger_s=0, write_device=store.write_device)
    for item in [window(1), device("status", 2, "s"), device("reported", 3, "r"),
                 device("events", 4, "e"), invalid(5), device("reported", 6, "r2"),
                 window(7), device("events", 8, "e2")]:
        p.submit(item)
    p.drain()
    assert store.batches == [[1], [7]]
    assert store.device_runs == [["s", "r", "e"], ["r2"], ["e2"]]  # an invalid one cuts a run
    assert store.messages == []  # nothing went one by one
    # two busy tries and the write: none of the run's messages acknowledged before it
    assert store.acked_at_write[:3] == [[1], [1], [1]]
    assert store.acked == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_poisoned_device_message_is_written_alone_and_the_rest_stored() -> None:
    store = DeviceStore()
    p = IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=20,
                       linger_s=0, write_device=store.write_device)
    for mid, text in enumerate(["a", "poison", "b"], start=1):
        p.submit(device("reported", mid, text))
    p.drain()
    assert store.device_runs == [["a"], ["b"]]
    assert store.acked == [1, 2, 3]


class KeepingStore(FakeStore):
    """Keeps failed messages; ``keep_busy`` transient failures first, then refuses to keep
    anything while ``keep_broken``. Each keep is checked to come before its message's ack."""

    def __init__(self, keep_busy: int = 0, keep_broken: bool = False) -> None:
        super().__init__()
        self.keep_busy = keep_busy
        self.keep_broken = keep_broken
        self.kept: list[tuple[int, str, bool]] = []  # mid, error, acked before it was kept

    def keep(self, item: Inbound, error: str) -> None:
        if self.keep_busy:
            self.keep_busy -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        if self.keep_broken:
            raise IntegrityError("INSERT", {}, Exception("dead_letter is missing"))
        self.kept.append((item.mid, error, item.mid in self.acked))


def keeping(store: KeepingStore) -> IngestPipeline:
    return IngestPipeline(store.write_windows, store.handle, store.ack, batch_size=20,
                          linger_s=0, keep_failed=store.keep)


def test_a_message_that_fails_alone_is_kept_before_it_is_acknowledged() -> None:
    store = KeepingStore(keep_busy=2)  # keeping it retries transient errors too
    p = keeping(store)
    for mid in range(10, 16):
        p.submit(window(mid))
    p.drain()
    assert store.batches == [[10], [11], [12], [14], [15]]
    assert [(mid, acked) for mid, _error, acked in store.kept] == [(13, False)]
    assert store.kept[0][1].startswith("IntegrityError: (builtins.Exception) poisoned")
    assert store.acked == list(range(10, 16))


def test_a_message_that_cannot_be_kept_either_is_counted_as_an_error() -> None:
    store = KeepingStore(keep_broken=True)
    p = keeping(store)
    for mid in range(12, 15):
        p.submit(window(mid))
    p.drain()
    assert store.kept == [] and store.batches == [[12], [14]]
    assert store.acked == [12, 13, 14]  # as before dead letters: a retry would fail the same
