"""Fixtures shared by integration tests: a store worked on directly (no API process), and a
headless Chromium for the dashboard's browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from tests.browser_kit import Browser, chromium_path


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url`` (SQLite, then PostgreSQL), migrated to the newest
    revision; a module that needs more in its store defines its own ``store``."""
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def cam0_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated SQLite store holding one device, ``cam-0``, for ingest tests that send
    its windows through a real broker."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'parkwatch.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    with session_scope(engine) as session:
        session.add(Device(device_id="cam-0", labels={}))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """One headless Chromium for the test; skipped where Chromium is not installed."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed: apt-get install -y chromium (scripts/bootstrap.sh)")
    b = Browser(tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.stop()
