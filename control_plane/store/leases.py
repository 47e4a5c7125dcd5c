"""Leases: one process at a time runs each singleton job (rollout engine, drift analysis and
retention, retraining rounds) among the replicas that share a store.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection
  the lease keeps open. A process that dies, however it dies, closes that connection and
  the server releases the lock at once: a standby takes it at its next try, one
  interval later. The holder checks its connection before every run, so a holder whose
  connection broke (a restarted server) stops running until it holds the lock again.
- SQLite: one process runs everything (the database is a local file): no lease
  (``lease_for`` returns None).
"""

from __future__ import annotations

import hashlib
import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


def lease_key(name: str) -> int:
    """The advisory lock's 64-bit key for a job name (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(f"parkwatch:{name}".encode(), digest_size=8).digest(),
                          "big", signed=True)


def lease_for(engine: Engine, name: str) -> Lease | None:
    """The lease of job ``name`` on a shared store (PostgreSQL); None on SQLite."""
    return Lease(engine, name) if engine.dialect.name == "postgresql" else None


class Lease:
    """Leadership of the job ``name`` among the processes sharing a PostgreSQL store."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lease_key(name)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def hold(self) -> bool:
        """Keep or take the lease now; False while another process holds it (or the store
        cannot be reached)."""
        with self._lock:
            try:
                if self._conn is not None:
                    self._conn.execute(text("SELECT 1"))  # still ours if still connected
                    self._conn.commit()
                    return True
                conn = self.engine.connect()
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": self.key}).scalar())
                conn.commit()  # the lock is the session's; no transaction stays open
                if got:
                    self._conn = conn
                    log.info("lease taken", extra={"lease": self.name})
                else:
                    conn.close()
                return got
            except Exception as exc:  # the store is away: hold nothing until it is back
                log.warning("lease %s lost: %s", self.name, str(exc).splitlines()[0][:200])
                self._drop()
                return False

    def release(self) -> None:
        """Give the lease up (a clean stop), so a standby need not wait for a dead
        connection to be noticed."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self._conn.commit()
                except Exception:
                    log.warning("lease %s: unlock failed; closing its connection", self.name)
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never back to the pool: the lock may still be on it
                conn.close()
            except Exception:
                log.debug("lease connection already gone", exc_info=True)


__all__ = ["Lease", "lease_for", "lease_key"]
