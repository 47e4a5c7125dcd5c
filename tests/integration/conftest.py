"""Fixtures shared by integration tests that work on a store directly (no API process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from control_plane.store.db import create_db_engine, upgrade


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
