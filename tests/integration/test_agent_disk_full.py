"""Disk full on the agent's queue: a real SQLite outbox capped with ``max_page_count``
(the same SQLITE_FULL a full disk gives). The policy: drop the oldest rows, count
them, report the count in telemetry; never raise, never stop the agent."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.outbox import Outbox
from protocols import telemetry_topic
from tests.agent_kit import (
    Observer,
    Rig,
    looping_camera,
    make_release,
    make_rig,
    release_server,
    running_rig,
    wait_until,
)
from tests.conftest import Mosquitto, free_port, start_mosquitto
from tests.integration.test_agent_lifecycle import http_get

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
            # Drained after the outage (PUBACKs are handled a moment after ingest has them).
            wait_until(lambda: agent.outbox.count() < filled, 30, "the outbox draining")
        finally:
            for agent in list(rig.agents):
                agent.stop()
            rig.observer.close()
            broker.stop()


# -- a real full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own: a file system that really fills up (ENOSPC)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (run as root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system refuses (ENOSPC); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def counter(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def said_offline(rig: Rig) -> bool:
    return (rig.observer.last("status") or {}).get("state") == "offline"


def test_agent_on_a_full_disk_keeps_classifying_and_recovers(
        small_disk: Path, mosquitto: Mosquitto) -> None:
    """The data folder's file system fills up while the agent classifies: inference, /healthz
    and /metrics go on, windows that cannot be stored are counted, and once space returns
    telemetry flows again and reports exactly the windows it could not store."""
    port = free_port()
    with running_rig(small_disk, mosquitto.url) as rig:
        rig.server.add(make_release(rig.key, "r1"))
        agent = rig.start_agent(rig.config(looping_camera(small_disk), window_seconds=1,
                                           metrics_port=port))
        rig.observer.desire(1, "r1")
        rig.wait_healthy("r1")
        base = f"http://127.0.0.1:{port}"
        inferred = 'parkwatch_agent_frames_total{camera_id="gate",outcome="inferred"}'
        filler = fill(small_disk)
        closed = agent.loop.windows_closed
        before = counter(http_get(f"{base}/metrics")[1], inferred)
        wait_until(lambda: agent.loop.windows_closed >= closed + 4, 30,
                   "four windows closed on the full disk")
        status, body = http_get(f"{base}/healthz")
        after = counter(http_get(f"{base}/metrics")[1], inferred)
        print(f"injected: data folder's file system full ({filler.stat().st_size} B filler) -> "
              f"observed /healthz {status}, {after - before:.0f} frames inferred meanwhile, "
              f"{agent.loop.windows_closed - closed} windows closed")
        assert status == 200, body
        assert after > before, "the local metrics stopped while the disk was full"

        filler.unlink()  # space returns: no restart, no operator

        def reported() -> int | None:
            n = sum(int(w["dropped_windows"]) for w in rig.observer.of("telemetry"))
            return n or None

        wait_until(reported, 30, "a window reporting the windows the full disk lost")
        rig.stop_agent(agent)  # closes the last window, flushes, says offline
        wait_until(lambda: said_offline(rig), 15, "the agent's offline status")
        produced = agent.loop.windows_closed
        windows = rig.observer.of("telemetry")
        delivered = {int(w["seq"]) for w in windows}
        dropped = sum(int(w["dropped_windows"]) for w in windows)
        print(f"space returned -> observed {len(delivered)} windows delivered + {dropped} "
              f"reported dropped of {produced} produced")
        assert len(delivered) + dropped == produced
        assert dropped > 0


def test_dropped_windows_are_counted_exactly(tmp_path: Path) -> None:
    """A broker outage longer than the outbox holds: every window the agent produced is
    delivered or counted once in a later window's dropped_windows (events likewise)."""
    state = tmp_path / "broker"
    state.mkdir()
    broker = start_mosquitto(
        state, f"persistence true\npersistence_location {state}/\nuser root\n")
    with release_server() as server:
        rig = make_rig(tmp_path, broker.url, server)
        rig.observer.close()
        rig.observer = Observer(broker.url, client_id="observer", key=rig.key)  # misses nothing
        try:
            agent = rig.start_agent(rig.config(looping_camera(tmp_path), window_seconds=1,
                                               outbox_max_rows=10))
            wait_until(lambda: rig.observer.of("telemetry"), 15, "a first window")
            broker.stop()
            closed = agent.loop.windows_closed
            wait_until(lambda: agent.loop.windows_closed >= closed + 25, 60,
                       "25 windows produced during the outage")
            broker.start()
            wait_until(lambda: sum(int(w["dropped_windows"]) for w in rig.observer.of(
                "telemetry")), 60, "a window reporting drops")
            rig.stop_agent(agent)  # closes the last window, flushes, says offline
            wait_until(lambda: said_offline(rig), 15, "the agent's offline status")
            windows = rig.observer.of("telemetry")
            produced = agent.loop.windows_closed
            delivered = {int(w["seq"]) for w in windows}
            dropped = sum(int(w["dropped_windows"]) for w in windows)
            events = rig.observer.of("events")
            ev_dropped = sum(int(w.get("dropped_events", 0)) for w in windows)
            ev_delivered = {int(e["seq"]) for e in events}
            print(f"injected: broker down for {produced - closed} windows with a 10-row outbox "
                  f"-> observed {len(delivered)} windows delivered + {dropped} reported dropped "
                  f"of {produced} produced; events {len(ev_delivered)} + {ev_dropped} of "
                  f"{agent.events.produced}")
            assert len(delivered) + dropped == produced
            assert dropped > 0
            assert len(ev_delivered) + ev_dropped == agent.events.produced
        finally:
            for running in list(rig.agents):
                running.stop()
            rig.observer.close()
            broker.stop()
