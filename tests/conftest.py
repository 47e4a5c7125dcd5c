"""Fixtures shared by all test layers: free ports, a private Mosquitto, PostgreSQL.

Fixtures own their processes and temp dirs and stop what they start, by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scripts.loop import free_port

__all__ = ["free_port"]  # tests import it from here; the demo and benches use the same

REPO_ROOT = Path(__file__).resolve().parents[1]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end files first (a stable sort keeps the rest in order): scripts/test runs
    with pytest-xdist, which hands files out in collection order, so each of these
    minutes-long files starts at once on a worker of its own instead of last."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Give every test the environment it started with. The CLI's root callback writes
    ``--timeout`` into ``os.environ`` (one process per command in real use); run in-process
    by a test, that would leak into whichever test the same pytest process runs next."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL: a SQLite file, then a fresh PostgreSQL database (skipped without one)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'cp.db'}"


@contextmanager
def serving(app: Any, port: int, log_level: str = "warning") -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn in a thread on ``port``; yields its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A stdlib HTTP server on a free loopback port, in a thread; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@dataclass
class Mosquitto:
    """A mosquitto process of our own; `stop()`/`start()` simulate an outage."""

    port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


    def kill(self) -> None:
        """kill -9: no save, no goodbye (a crash or a power cut, as its clients see it)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def start_mosquitto(tmp: Path, extra_config: str = "") -> Mosquitto:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does this)")
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 100000\n{extra_config}"
    )
    broker = Mosquitto(port=port, config=conf, log=tmp / "mosquitto.log")
    broker.start()
    return broker


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free port, stopped after the test."""
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.stop()


def _postgres_admin_url() -> str:
    return os.environ.get("PARKWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; skipped when no server answers."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'parkwatch[control-plane]')")
    admin = _postgres_admin_url()
    dsn = admin.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {dsn}: {exc}".splitlines()[0])
    name = f"pw_test_{uuid.uuid4().hex[:10]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_a_lock_wait(engine: sa.Engine, what: str, timeout: float = 30) -> None:
    """Poll PostgreSQL until a session of this database waits for a lock (another
    transaction of the test holds it); fail naming ``what`` after ``timeout`` seconds."""
    with engine.connect() as conn:
        deadline = time.monotonic() + timeout
        while True:
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")).scalar()
            conn.rollback()  # pg_stat_activity is read once per transaction
            if waiting:
                return
            assert time.monotonic() < deadline, what
            time.sleep(0.05)
