"""Store-and-forward: telemetry and events are written here before they are published.

A row's life: pending -> in flight (handed to the MQTT client, :mod:`.mqtt`) ->
acknowledged by the broker (PUBACK) -> deleted ``resend_seconds`` later. Until then a
reconnect sends it again: a broker that is killed or loses power forgets what it
acknowledged since its last save to disk, and ingest is idempotent on (device, seq), so
a second copy costs nothing (docs/operations.md, "What survives what").

Bounds: ``max_rows`` rows, and ``max_bytes`` on disk for the database and its
write-ahead log together (:mod:`.outbox_file`). Beyond a bound the acknowledged rows go
first (they cost nothing), then the oldest pending ones; a row in flight is never
dropped (the broker may still take it).

Durability: commits are not synced one by one (that costs an fsync per event on the
inference thread); :meth:`take` syncs the WAL before rows leave the device, so a seq
that went out is on disk and a power cut never hands it out twice (ingest would drop
the second window as a copy of the first).

Every row that never reaches the broker is counted exactly once: a pending row that is
dropped in the transaction that deletes it, a row that could not be stored at all (a
full disk) in memory until a write succeeds. The counts ride on the next stored
telemetry window (``put_stamped``), taken in the transaction that stores it, and a
window that is dropped before delivery gives them back. ``seq`` is assigned in that
same transaction, so only stored rows are numbered and a failed write wastes none.

Nothing here raises on a storage error: telemetry must never stop the agent. A full
disk (SQLITE_FULL: the file system, or the ``max_bytes`` cap) first drops the oldest
tenth of the queue and retries; what still cannot be written is counted and logged once
per outage, and everything works again as soon as a write succeeds.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import OutboxError
from .outbox_file import error_code, instance_id, open_database

log = logging.getLogger(__name__)
RowKind = Literal["telemetry", "event"]

_PENDING = "FROM outbox o LEFT JOIN acked a ON a.id = o.id WHERE a.at IS NULL"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Dropped:
    """Rows lost before delivery, as a telemetry window reports them."""

    windows: int = 0
    events: int = 0


# Builds a row's payload from its seq and the drops it reports; called inside the
# transaction that stores the row (an exception in it rolls that back and propagates).
Stamp = Callable[[int, Dropped], bytes]


class Outbox:
    """A bounded SQLite queue, safe to use from several threads."""

    def __init__(self, path: Path, max_rows: int = 10_000, max_bytes: int | None = None,
                 resend_seconds: float = 0.0) -> None:
        self.max_rows = max_rows
        self.resend_seconds = resend_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._inflight: set[int] = set()
        self._acked: dict[int, float] = {}  # acknowledged, not yet written down (disk full)
        self._unsaved: Counter[str] = Counter()  # drops not yet written down (disk full)
        self._failure: str | None = None  # the storage error of an ongoing outage
        self._unsynced = False  # commits since the last sync (see take)
        self._wal = Path(f"{path}-wal")
        try:
            self._db = open_database(path, max_bytes)
            # seq is numbered per instance: the telemetry carries it (outbox_file).
            self.instance = instance_id(self._db)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from None
        self._unsynced = True  # what an earlier run wrote may not be on disk yet

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ------------------------------------------------------------------------------
    def put(self, kind: RowKind, topic: str, payload: bytes) -> int:
        """Append a row as it is (no seq, no drop counts). Returns its id, or 0 when it was
        dropped (counted)."""
        return self._store(kind, topic, lambda seq, dropped: payload, numbered=False)

    def put_stamped(self, kind: RowKind, topic: str, stamp: Stamp) -> int:
        """Append a row numbered by the persistent ``seq`` of ``kind``; a telemetry window
        also takes the drop counts it reports. Returns its id, or 0 when it was dropped
        (counted)."""
        return self._store(kind, topic, stamp, numbered=True)

    def _store(self, kind: RowKind, topic: str, stamp: Stamp, numbered: bool) -> int:
        with self._changed:
            error: sqlite3.Error | None = None
            for _attempt in range(20):
                try:
                    row_id = self._insert(kind, topic, stamp, numbered)
                except sqlite3.Error as exc:
                    error = exc
                    if error_code(exc) == sqlite3.SQLITE_FULL and self._drop_oldest_fraction(10):
                        continue
                    break
                self._unsynced = True
                self._stored()
                self._changed.notify_all()
                return row_id
            self._unsaved[kind] += 1
            self._failed(f"a {kind} row was dropped ({error or 'no room'})")
            return 0

    def _insert(self, kind: RowKind, topic: str, stamp: Stamp, numbered: bool) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self._add(f"seq_{kind}", 1) - 1 if numbered else 0
            carried = self._counts() if numbered and kind == "telemetry" else Dropped()
            cur = db.execute(
                "INSERT INTO outbox (kind, topic, payload, carried_windows, carried_events) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, topic, stamp(seq, carried), carried.windows, carried.events),
            )
            row_id = int(cur.lastrowid or 0)
            if carried != Dropped():
                db.execute("UPDATE counters SET value = 0 "
                           "WHERE name IN ('dropped_telemetry', 'dropped_event')")
            (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            if int(count) > self.max_rows:
                self._drop(int(count) - self.max_rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLITE_FULL may have rolled back already
                db.execute("ROLLBACK")
            raise
        if carried != Dropped():
            self._unsaved.clear()  # written into this window
        return row_id

    def _counts(self) -> Dropped:
        saved = dict(self._db.execute(
            "SELECT name, value FROM counters WHERE name IN ('dropped_telemetry', "
            "'dropped_event')").fetchall())
        return Dropped(int(saved.get("dropped_telemetry", 0)) + self._unsaved["telemetry"],
                       int(saved.get("dropped_event", 0)) + self._unsaved["event"])

    def _drop(self, n: int) -> int:
        """Delete ``n`` rows inside the caller's transaction: acknowledged ones first, then
        the oldest pending ones, never one in flight; count what was lost."""
        db, held = self._db, sorted(self._inflight)
        victims = db.execute(
            "SELECT o.id, o.kind, a.id IS NOT NULL, o.carried_windows, o.carried_events "
            "FROM outbox o LEFT JOIN acked a ON a.id = o.id "
            f"WHERE o.id NOT IN ({', '.join('?' * len(held))}) "
            "ORDER BY a.at IS NULL, o.id LIMIT ?", (*held, n)).fetchall()
        gone = [(v[0],) for v in victims]
        db.executemany("DELETE FROM outbox WHERE id = ?", gone)
        db.executemany("DELETE FROM acked WHERE id = ?", gone)
        lost: Counter[str] = Counter()
        undelivered = 0
        for row_id, kind, delivered, windows, events in victims:
            if not delivered and self._acked.pop(row_id, None) is None:
                undelivered += 1
                lost[kind] += 1
                lost["telemetry"] += windows  # what it carried is reported again
                lost["event"] += events
        for kind, k in lost.items():
            if k:
                self._add(f"dropped_{kind}", k)
        if undelivered:
            log.warning("outbox full: %d rows not yet delivered dropped (counted)", undelivered)
        return len(victims)

    def _drop_oldest_fraction(self, denominator: int) -> int:
        """Make room: drop 1/``denominator`` of the rows (at least one), in a transaction
        of its own. Returns how many went (0 when none could)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            n = self._drop(max(1, int(count) // denominator)) if count else 0
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.debug("outbox could not make room: %s", exc)
            return 0
        return n

    def _failed(self, what: str) -> None:
        if self._failure is None:
            log.error("outbox cannot write: %s; rows are counted as dropped until a write "
                      "succeeds", what)
        self._failure = what

    def _stored(self) -> None:
        if self._failure is not None:
            log.warning("outbox writes again (last failure: %s)", self._failure)
            self._failure = None
        self._write_acks(time.time())

    # -- the drain ----------------------------------------------------------------------------
    def take(self, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` pending rows not in flight yet, oldest first; they are in flight
        from now on, until :meth:`ack` or :meth:`release`."""
        with self._lock:
            skip = self._inflight | self._acked.keys()
            rows = self._db.execute(
                f"SELECT o.id, o.kind, o.topic, o.payload {_PENDING} ORDER BY o.id LIMIT ?",
                (limit + len(skip),)).fetchall()
            taken = [OutboxRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]))
                     for r in rows if r[0] not in skip][:limit]
            if taken and self._unsynced:
                self._sync()
            self._inflight.update(r.id for r in taken)
        return taken

    def _sync(self) -> None:
        """Make every commit durable: one fsync of the WAL, whose committed frames a
        restart replays (a checkpoint syncs the database itself)."""
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:  # everything is checkpointed into the database
            self._unsynced = False
            return
        except OSError as exc:  # rows go out anyway: delivery beats a rare repeat
            log.warning("outbox could not sync before sending: %s", exc)
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unsynced = False

    def release(self, row_id: int) -> None:
        """The row was not handed over after all: it is pending again."""
        with self._lock:
            self._inflight.discard(row_id)

    def ack(self, *row_ids: int) -> None:
        """The broker has these rows: kept ``resend_seconds`` for a resend, then deleted."""
        now = time.time()
        with self._changed:
            self._inflight.difference_update(row_ids)
            self._acked.update(dict.fromkeys(row_ids, now))
            self._write_acks(now)
            self._changed.notify_all()

    def _write_acks(self, now: float) -> None:
        for _attempt in range(3):
            if not self._acked:
                return
            try:
                self._mark_acked(now)
            except sqlite3.Error as exc:  # kept in memory: a restart sends them once more
                if error_code(exc) == sqlite3.SQLITE_FULL and self._drop_oldest_fraction(10):
                    continue
                self._failed(f"acknowledgements kept in memory ({exc})")
                return
            self._acked.clear()

    def _mark_acked(self, now: float) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.resend_seconds > 0:
                db.executemany("INSERT OR REPLACE INTO acked (id, at) VALUES (?, ?)",
                               list(self._acked.items()))
                expired = now - self.resend_seconds
                db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM acked WHERE at < ?)",
                           (expired,))
                db.execute("DELETE FROM acked WHERE at < ?", (expired,))
            else:
                db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in self._acked])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def resend_acked(self, lost_at: float) -> int:
        """After a reconnect: rows acknowledged within ``resend_seconds`` before the link
        was lost (wall clock ``lost_at``) are pending again. Returns how many."""
        if self.resend_seconds <= 0:
            return 0
        with self._changed:
            self._acked.clear()  # never written down as acknowledged: pending anyway
            try:
                cur = self._db.execute("UPDATE acked SET at = NULL WHERE at >= ?",
                                       (lost_at - self.resend_seconds,))
            except sqlite3.Error as exc:
                self._failed(f"rows to resend not marked ({exc})")
                return 0
            self._changed.notify_all()
            return int(cur.rowcount)

    # -- reading ------------------------------------------------------------------------------
    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxRow]:
        """Rows not acknowledged with id > ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT o.id, o.kind, o.topic, o.payload {_PENDING} AND o.id > ? "
                "ORDER BY o.id LIMIT ?", (after_id, limit + len(self._acked))).fetchall()
            acked = set(self._acked)
        return [OutboxRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]))
                for r in rows if r[0] not in acked][:limit]

    def count(self) -> int:
        """Rows the broker has not acknowledged."""
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) {_PENDING}").fetchone()
            return int(n) - len(self._acked)

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    # -- counters ---------------------------------------------------------------------------
    def _add(self, name: str, delta: int) -> int:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, delta),
        )
        (value,) = self._db.execute(
            "SELECT value FROM counters WHERE name = ?", (name,)
        ).fetchone()
        return int(value)

    def next_seq(self, name: str) -> int:
        """The next value of a persistent, monotonic counter (first value 0). Raises
        :class:`OutboxError` when it cannot be written (``put_stamped`` never does)."""
        with self._lock:
            try:
                return self._add(f"seq_{name}", 1) - 1
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot number a {name}: {exc}") from None

    def take_dropped(self, kind: RowKind) -> int:
        """How many rows of ``kind`` were dropped since the last call (and reset to 0), for
        a caller that does not report them with ``put_stamped``."""
        with self._lock:
            name = f"dropped_{kind}"
            row = self._db.execute("SELECT value FROM counters WHERE name = ?",
                                   (name,)).fetchone()
            try:
                self._db.execute("UPDATE counters SET value = 0 WHERE name = ?", (name,))
            except sqlite3.Error:
                return 0  # kept for the next call
            n, self._unsaved[kind] = int(row[0] if row else 0) + self._unsaved[kind], 0
            return n
