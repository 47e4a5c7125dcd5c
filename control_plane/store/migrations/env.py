"""Alembic environment: the target schema is the SQLModel metadata of ``store.models``.

``db.upgrade`` passes an open connection in ``config.attributes["connection"]``;
the alembic CLI (``-x url=...`` not needed) falls back to ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from control_plane.store import models  # noqa: F401  (registers the tables)
from control_plane.store.db import create_db_engine

target_metadata = SQLModel.metadata


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE
    )


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
