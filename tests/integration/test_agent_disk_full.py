"""Disk full on the agent's queue: a real SQLite outbox capped with ``max_page_count``
(the same SQLITE_FULL a full disk gives). The policy: drop the oldest rows, count
them, report the count in telemetry; never raise, never stop the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_agent.outbox import Outbox
from protocols import telemetry_topic
from tests.agent_kit import looping_camera, make_rig, release_server, wait_until
from tests.conftest import Mosquitto, free_port

pytestmark = pytest.mark.fault
CAP = 64 * 1024


def test_full_outbox_drops_oldest_first_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=1_000_000, max_bytes=CAP)
    ids = [box.put("telemetry", "t", f"{i:06d}".encode() * 150) for i in range(300)]
    kept = box.pending(limit=1000)
    dropped = box.take_dropped("telemetry")
    print(f"injected: 300 rows of 900 B into a {CAP // 1024} KiB outbox -> observed "
          f"{len(kept)} kept, {dropped} dropped (oldest first), no exception")
    assert 0 < len(kept) < 300
    assert dropped == 300 - len(kept)
    assert all(i > 0 for i in ids), "a new row was dropped while older ones remained"
    assert [r.id for r in kept] == ids[-len(kept):]  # the newest, contiguous, in order
    assert (tmp_path / "o.db").stat().st_size <= CAP
    # The broker comes back: the queue drains and takes rows again without loss.
    for row in kept:
        box.ack(row.id)
    again = [box.put("event", "e", b"x" * 900) for _ in range(20)]
    assert [r.id for r in box.pending()] == again and box.take_dropped("event") == 0


def test_row_larger_than_the_cap_is_dropped_itself(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=CAP)
    small = box.put("event", "e", b"a")
    assert box.put("telemetry", "t", b"x" * (4 * CAP)) == 0
    print(f"injected: one {4 * CAP // 1024} KiB row into a {CAP // 1024} KiB outbox -> "
          f"observed it dropped and counted, older rows gone too: {box.count()} left")
    assert box.take_dropped("telemetry") == 1
    assert box.take_dropped("event") == 1 and small > 0  # made room first, in vain
    assert box.put("event", "e", b"b") > 0  # still works afterwards


def _fill(path: Path, cap: int) -> int:
    """Fill an outbox to its cap with windows of an earlier run; return how many fit."""
    box = Outbox(path, max_rows=1_000_000, max_bytes=cap)
    n = 0
    while not box.take_dropped("telemetry"):
        box.put("telemetry", telemetry_topic("park1-gate"), b'{"filler": "' + b"x" * 500 + b'"}')
        n += 1
    box.close()
    return n - 1


def test_agent_with_a_full_queue_reports_what_it_dropped(tmp_path: Path) -> None:
    """A real agent whose queue is full while its broker is away: it keeps running,
    drops the oldest rows and, once the broker is back, telemetry names the count."""
    cap = 32 * 1024
    filled = _fill(tmp_path / "data" / "outbox.sqlite3", cap)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = Mosquitto(port=port, config=conf, log=tmp_path / "mosquitto.log")
    url = f"mqtt://127.0.0.1:{port}"
    with release_server() as server:
        rig = make_rig(tmp_path, url, server)
        try:
            agent = rig.start_agent(rig.config(looping_camera(tmp_path), window_seconds=1,
                                               outbox_max_bytes=cap))
            first = agent.outbox.pending(limit=1)[0].id
            wait_until(lambda: agent.outbox.pending(limit=1)[0].id > first, 20,
                       "the full outbox dropping its oldest rows")
            broker.start()

            def report() -> list[dict[str, Any]] | None:
                windows = [w for w in rig.observer.of("telemetry") if "seq" in w]
                return windows if any(w["dropped_windows"] for w in windows) else None

            windows = wait_until(report, 30, "a window reporting dropped windows")
            reported = sum(int(w["dropped_windows"]) for w in windows)
            print(f"injected: outbox full ({filled} queued windows, {cap // 1024} KiB cap) and "
                  f"broker down -> observed {reported} windows reported dropped, "
                  f"{len(windows)} new windows delivered, agent still running")
            assert reported > 0
            assert agent.outbox.count() < filled  # drained after the outage
        finally:
            for agent in list(rig.agents):
                agent.stop()
            rig.observer.close()
            broker.stop()
