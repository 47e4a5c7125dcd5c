"""Outbox: delete on ack, bounded with oldest-first drops, order on replay, seq persistence."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

from edge_agent.outbox import Dropped, Outbox


def test_rows_stay_until_acked(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    a = box.put("telemetry", "t", b"a")
    b = box.put("event", "e", b"b")
    assert [r.payload for r in box.pending()] == [b"a", b"b"]
    box.ack(b)
    assert [r.id for r in box.pending()] == [a]
    assert [r.id for r in box.pending(after_id=a)] == []


def test_replay_after_restart_is_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    ids = [box.put("telemetry", "t", str(i).encode()) for i in range(50)]
    box.ack(ids[3])
    box.close()
    again = Outbox(tmp_path / "o.db")
    rows = again.pending(limit=1000)
    assert [int(r.payload) for r in rows] == [i for i in range(50) if i != 3]
    assert [r.id for r in rows] == sorted(r.id for r in rows)


def test_bound_drops_oldest_first_and_counts_by_kind(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=10)
    box.put("event", "e", b"e0")
    for i in range(14):
        box.put("telemetry", "t", f"w{i}".encode())
    rows = box.pending(limit=100)
    assert box.count() == 10
    assert [r.payload for r in rows] == [f"w{i}".encode() for i in range(4, 14)]
    assert box.take_dropped("telemetry") == 4
    assert box.take_dropped("event") == 1
    assert box.take_dropped("telemetry") == 0  # reported once


def test_dropped_count_survives_restart(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=10)
    for i in range(12):
        box.put("telemetry", "t", str(i).encode())
    box.close()
    assert Outbox(tmp_path / "o.db", max_rows=10).take_dropped("telemetry") == 2


def test_instance_is_kept_by_its_file_and_new_with_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    first = Outbox(path)
    instance = first.instance
    first.close()
    again = Outbox(path)
    assert again.instance == instance  # a restart keeps numbering under the same instance
    again.close()
    path.unlink()  # the data folder is lost: seq restarts at 0 under a new instance
    fresh = Outbox(path)
    assert fresh.instance != instance and fresh.next_seq("telemetry") == 0
    fresh.close()


def test_sequences_are_monotonic_across_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert [box.next_seq("telemetry") for _ in range(3)] == [0, 1, 2]
    assert box.next_seq("event") == 0
    box.close()
    assert Outbox(tmp_path / "o.db").next_seq("telemetry") == 3


def test_ids_keep_growing_after_the_queue_empties(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    first = box.put("telemetry", "t", b"x")
    box.ack(first)
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert again.put("telemetry", "t", b"y") > first  # AUTOINCREMENT: never reused


def _bytes_on_disk(folder: Path) -> int:
    """The database and whatever SQLite keeps beside it (journal, WAL, shared memory)."""
    total = 0
    for path in folder.glob("o.db*"):
        with contextlib.suppress(FileNotFoundError):  # a journal that went away meanwhile
            total += path.stat().st_size
    return total


def test_max_bytes_bounds_everything_on_disk(tmp_path: Path) -> None:
    """Rows come and go (a broker that acks some): the database, its journal or WAL and
    any shared-memory file stay under ``max_bytes`` together, sampled while writes run."""
    cap = 64 * 1024
    box = Outbox(tmp_path / "o.db", max_rows=1_000_000, max_bytes=cap)
    peak, stop = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _bytes_on_disk(tmp_path))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for i in range(1500):
            row = box.put("telemetry", "t", i.to_bytes(4, "big") * 225)
            if i % 3:
                box.ack(row)
    finally:
        stop.set()
        sampler.join()
    peak = max(peak, _bytes_on_disk(tmp_path))
    print(f"injected: 1500 rows of 900 B, two in three acked, into a {cap // 1024} KiB outbox "
          f"-> observed at most {peak} B on disk, {box.count()} rows kept")
    assert peak <= cap
    assert box.count() > 0


def _window(seq: int, dropped: Dropped) -> bytes:
    return json.dumps({"seq": seq, "dropped": dropped.windows, "events": dropped.events}).encode()


def test_every_window_is_delivered_or_counted_once(tmp_path: Path) -> None:
    """A long outage against a 5-row bound: windows that carried drop counts are dropped
    too, and give their counts back; delivered + reported == produced, exactly."""
    box = Outbox(tmp_path / "o.db", max_rows=5)
    for _ in range(40):
        box.put_stamped("telemetry", "t", _window)
        box.put_stamped("event", "e", lambda seq, dropped: f"event {seq}".encode())
    delivered = [json.loads(r.payload) for r in box.take(100) if r.kind == "telemetry"]
    reported = sum(w["dropped"] for w in delivered) + box.take_dropped("telemetry")
    events = len([r for r in box.pending(limit=100) if r.kind == "event"])
    reported_events = sum(w["events"] for w in delivered) + box.take_dropped("event")
    print(f"injected: 40 windows and 40 events into a 5-row outbox -> observed "
          f"{len(delivered)} windows kept + {reported} reported dropped; events {events} + "
          f"{reported_events}")
    assert len(delivered) + reported == 40
    assert events + reported_events == 40
    assert [w["seq"] for w in delivered] == sorted(w["seq"] for w in delivered)


def test_rows_in_flight_are_never_dropped(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=10)
    for name in (b"a", b"b", b"c"):
        box.put("event", "e", name)
    sent = [r.id for r in box.take(3)]  # handed to the broker, no PUBACK yet
    for i in range(30):
        box.put("telemetry", "t", str(i).encode())
    assert {r.id for r in box.pending(limit=100)} >= set(sent)
    box.ack(*sent)
    assert box.take_dropped("event") == 0 and box.take_dropped("telemetry") == 23


def test_acknowledged_rows_are_kept_for_a_resend_and_dropped_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=5, resend_seconds=60)
    ids = [box.put("telemetry", "t", str(i).encode()) for i in range(4)]
    box.ack(*[r.id for r in box.take(10)])
    assert box.count() == 0 and box.pending() == [] and box.take(10) == []
    assert box.resend_acked(lost_at=time.time()) == 4  # the link dropped: send them again
    assert [r.id for r in box.take(10)] == ids
    box.ack(*ids)
    for i in range(3):  # room is made from the acknowledged rows: nothing is lost
        box.put("telemetry", "t", f"new {i}".encode())
    assert box.take_dropped("telemetry") == 0 and box.count() == 3
    assert box.resend_acked(lost_at=time.time() + 3600) == 0  # a link lost an hour later


def test_a_row_the_disk_refuses_is_counted_and_takes_no_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=32 * 1024)
    assert box.put_stamped("telemetry", "t", lambda seq, d: b"x" * 64 * 1024) == 0
    first = box.put_stamped("telemetry", "t", _window)
    (row,) = box.take(10)
    print(f"injected: a window larger than the 32 KiB cap -> observed it dropped, the next "
          f"stored as {json.loads(row.payload)}")
    assert first and json.loads(row.payload) == {"seq": 0, "dropped": 1, "events": 0}
