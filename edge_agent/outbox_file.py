"""The outbox's SQLite file: its tables, and the settings that bound it on disk.

SQLite's defaults bound neither the write-ahead log (it keeps its high-water mark,
megabytes) nor its shared-memory file. So the WAL is checkpointed every few pages and
truncated at each reset (``journal_size_limit``), the connection holds the file
exclusively (the WAL index lives in memory: no ``-shm`` file), and the database gets
the rest of ``max_bytes`` as a page cap. Commits are not synced one by one
(``synchronous = NORMAL``): the outbox syncs the WAL before rows leave the device.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Rows the broker acknowledged, apart from the payloads: marking one rewrites no payload.
-- at: when (wall clock); NULL: sent again after a reconnect (pending, delivered once).
CREATE TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY, at REAL);
-- This outbox's instance id (one row), chosen when the file is created: a new file (a
-- re-imaged device) numbers from 0 again, under an id the control plane has not seen.
CREATE TABLE IF NOT EXISTS instance (id TEXT NOT NULL);
"""
# Added to the outbox table, also of databases that earlier agents wrote.
COLUMNS = {
    "carried_windows": "INTEGER NOT NULL DEFAULT 0",  # drops this window reports
    "carried_events": "INTEGER NOT NULL DEFAULT 0",
}
SMALL_PAGE = 1024  # page size of a new outbox capped under 4 MiB: a small cap still holds rows
WAL_SHARE = 4  # 1/4 of max_bytes is left for the write-ahead log...
WAL_FLOOR = 16 * 1024  # ...and at least this: one write of a large window must fit
WAL_FRAME_OVERHEAD = 24


def open_database(path: Path, max_bytes: int | None) -> sqlite3.Connection:
    """Open (or create, or upgrade from an earlier agent's) outbox file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        _configure(db, max_bytes)
    except BaseException:
        db.close()
        raise
    return db


def _configure(db: sqlite3.Connection, max_bytes: int | None) -> None:
    if max_bytes is not None and max_bytes < 4 * 1024 * 1024:
        db.execute(f"PRAGMA page_size = {SMALL_PAGE}")  # no effect on an existing file
    # Before the WAL is entered: then its index is kept in memory, with no -shm file.
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA journal_size_limit = 0")  # truncate the WAL at every reset
    db.executescript(SCHEMA)
    have = {str(row[1]) for row in db.execute("PRAGMA table_info(outbox)")}
    for name, spec in COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {spec}")
    if max_bytes is None:
        return
    (page,) = db.execute("PRAGMA page_size").fetchone()
    wal = max(max_bytes // WAL_SHARE, WAL_FLOOR)
    # A quarter of the WAL's share before a checkpoint, the rest for the transaction
    # that crosses it (making room after SQLITE_FULL rewrites many pages at once).
    frames = wal // 4 // (int(page) + WAL_FRAME_OVERHEAD)
    db.execute(f"PRAGMA wal_autocheckpoint = {max(1, frames)}")
    db.execute(f"PRAGMA max_page_count = {max(8, (max_bytes - wal) // int(page))}")


def instance_id(db: sqlite3.Connection) -> str:
    """The file's instance id; chosen (random, 64 bits) on first use, then kept."""
    row = db.execute("SELECT id FROM instance").fetchone()
    if row is None:
        row = (secrets.token_hex(8),)
        db.execute("INSERT INTO instance (id) VALUES (?)", row)
    return str(row[0])


def error_code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF  # extended codes share the low byte
