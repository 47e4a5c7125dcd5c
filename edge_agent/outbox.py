"""Store-and-forward: telemetry and events are written here before they are published.

A row is deleted only when the broker acknowledged it (PUBACK). The queue is
bounded by rows: beyond ``max_rows`` the oldest rows are dropped and counted,
and the count is reported in the next telemetry window. The same database
keeps the per-device sequence counters, so ``seq`` survives restarts.

Disk full (SQLITE_FULL: the disk, or the ``max_bytes`` cap) follows the same
policy: drop the oldest tenth of the queue, counted, and retry; when nothing is
left to drop, the new row itself is dropped and counted. Neither case raises:
telemetry must never stop the agent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import OutboxError

log = logging.getLogger(__name__)
RowKind = Literal["telemetry", "event"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    topic: str
    payload: bytes


class Outbox:
    """A bounded SQLite (WAL) queue, safe to use from several threads."""

    def __init__(self, path: Path, max_rows: int = 10_000, max_bytes: int | None = None) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            if max_bytes is not None:
                (page,) = self._db.execute("PRAGMA page_size").fetchone()
                self._db.execute(f"PRAGMA max_page_count = {max(8, max_bytes // int(page))}")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, kind: RowKind, topic: str, payload: bytes) -> int:
        """Append a row; drop the oldest beyond ``max_rows`` or when the disk is full
        (counted). Returns the row id, or 0 when the row itself had to be dropped."""
        with self._changed:
            for _attempt in range(20):
                try:
                    return self._insert(kind, topic, payload)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                        raise
                if not self._drop_oldest_fraction(10):
                    break
            self._add_or_log(f"dropped_{kind}", 1)
            log.error("outbox is full and empty of older rows: %s row dropped", kind)
            return 0

    def _drop_oldest_fraction(self, denominator: int) -> int:
        """Delete the oldest 1/``denominator`` of the rows (at least one), counted by kind."""
        db = self._db
        (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        if not count:
            return 0
        victims = db.execute(
            "SELECT id, kind FROM outbox ORDER BY id LIMIT ?", (max(1, count // denominator),)
        ).fetchall()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM outbox WHERE id = ?", [(v[0],) for v in victims])
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.error("outbox disk full and rows cannot be deleted: %s", exc)
            return 0
        for name in ("telemetry", "event"):
            n = sum(1 for v in victims if v[1] == name)
            if n:
                self._add_or_log(f"dropped_{name}", n)
        log.warning("outbox disk full: dropped the %d oldest rows", len(victims))
        return len(victims)

    def _add_or_log(self, name: str, delta: int) -> None:
        try:
            self._add(name, delta)
        except sqlite3.OperationalError as exc:  # a full disk may refuse even the counter
            log.error("could not count %d %s: %s", delta, name, exc)

    def _insert(self, kind: RowKind, topic: str, payload: bytes) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "INSERT INTO outbox (kind, topic, payload) VALUES (?, ?, ?)",
                (kind, topic, payload),
            )
            row_id = int(cur.lastrowid or 0)
            (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            excess = int(count) - self.max_rows
            if excess > 0:
                victims = db.execute(
                    "SELECT id, kind FROM outbox ORDER BY id LIMIT ?", (excess,)
                ).fetchall()
                db.executemany("DELETE FROM outbox WHERE id = ?", [(v[0],) for v in victims])
                for name in ("telemetry", "event"):
                    n = sum(1 for v in victims if v[1] == name)
                    if n:
                        self._add(f"dropped_{name}", n)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLITE_FULL may have rolled back already
                db.execute("ROLLBACK")
            raise
        self._changed.notify_all()
        return row_id

    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxRow]:
        """Rows with id > ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def ack(self, row_id: int) -> None:
        """The broker has the row: delete it."""
        with self._changed:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            self._changed.notify_all()

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n)

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
        """The next value of a persistent, monotonic counter (first value 0)."""
        with self._lock:
            return self._add(f"seq_{name}", 1) - 1

    def take_dropped(self, kind: RowKind) -> int:
        """How many rows of ``kind`` were dropped since the last call (and reset to 0)."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM counters WHERE name = ?", (f"dropped_{kind}",)
            ).fetchone()
            if not row or not row[0]:
                return 0
            self._db.execute("UPDATE counters SET value = 0 WHERE name = ?", (f"dropped_{kind}",))
            return int(row[0])
