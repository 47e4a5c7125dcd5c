"""Outbox: delete on ack, bounded with oldest-first drops, order on replay, seq persistence."""

from __future__ import annotations

from pathlib import Path

from edge_agent.outbox import Outbox


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
