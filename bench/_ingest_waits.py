"""What an ingest worker's write waits on besides CPU, for ``fleet_ingest.py``: the
database backends' wait events sampled while ingest runs, the share of HOT updates, and a
worker's write transactions' wall time from its own metrics."""

from __future__ import annotations

import threading
import urllib.request

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families


class WaitSampler:
    """Samples what the database's backends (but this sampler's) are doing, every 20 ms,
    on a connection of its own while ingest runs: the share of samples in which a backend
    was active (running or waiting) and waiting on each event type (``Lock``: a row lock
    another worker holds until it commits; ``IO``: the commit's WAL flush, among others).
    Its own backend is left out of the CPU figures."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.pid = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            self.pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            self._ready.set()
            query = sa.text(
                "SELECT coalesce(wait_event_type, 'running') FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active'")
            while not self._stop.wait(0.02):
                for (event,) in conn.execute(query):
                    self.counts[event] = self.counts.get(event, 0) + 1
                self.samples += 1
                conn.rollback()  # no snapshot held between samples

    def stop(self) -> dict[str, float]:
        """Each event type's share of the active backends' samples."""
        self._stop.set()
        self._thread.join(10)
        active = sum(self.counts.values())
        return {k: v / active for k, v in sorted(self.counts.items())} if active else {}


def hot_updates(engine: sa.Engine) -> dict[str, float]:
    """The share of each ingest table's updates that were HOT (no new index entries): read
    after the workers exited (a backend reports its counts at exit at the latest)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('telemetry_rollup', 'device')")).all()
    return {name: hot / upd for name, upd, hot in rows if upd}


def write_seconds(port: int) -> tuple[float, float]:
    """(seconds, count) of the write transactions of the worker behind metrics ``port``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return (values.get("parkwatch_cp_ingest_write_seconds_sum", 0.0),
            values.get("parkwatch_cp_ingest_write_seconds_count", 0.0))
