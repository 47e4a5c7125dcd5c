"""Engine creation, sessions and schema migrations (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, SQLModel

from ..errors import ConfigError

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CONNECT_TIMEOUT_S = 10
# A pooled PostgreSQL connection idle longer than this is pinged before use. Pinging at
# every checkout was one round trip of the two or three a small API read makes; a
# connection back in the pool seconds ago is alive unless the server went away in those
# seconds, and then the failing statement invalidates the whole pool (the caller gets a
# 503 to retry: api/app.py), so the next checkouts connect afresh.
PING_AFTER_IDLE_S = 2.0
_MIGRATE_LOCK = 0x70617277  # pg advisory lock key for migrations ("parw")


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_db_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL, foreign keys and a busy timeout."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the SQLite store's folder {folder} ({exc.strerror}): make "
                    "data_dir (PARKWATCH_DATA_DIR) writable, or set database_url") from None
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        # A host that drops packets would otherwise hang the first connect for minutes.
        # LIFO: the connections in use stay few and warm, the others idle (and get pinged).
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True,
                                  connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        ping_after_idle(engine, PING_AFTER_IDLE_S)
        return engine
    raise ConfigError(
        f"unsupported database {url.get_backend_name()!r}: use sqlite:///path or "
        "postgresql+psycopg://user@host/db"
    )


def ping_after_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection at checkout when it sat in the pool ``idle_s`` or longer
    (SQLAlchemy's ``pool_pre_ping`` pings at every checkout); a dead one is replaced."""

    def checked_in(_dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    def checkout(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or back in the pool moments ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (or connects anew).
            raise sa.exc.DisconnectionError(f"a pooled connection is dead: {exc}") from exc

    sa.event.listen(engine.pool, "checkin", checked_in)
    sa.event.listen(engine.pool, "checkout", checkout)


def statement_by_statement(engine: Engine) -> Engine:
    """``engine`` (the same pool) running each statement as its own transaction on
    PostgreSQL: a session that only reads then costs no BEGIN and no ROLLBACK, two of
    the few round trips of a small API read, each a wait for a core on a busy host. Its
    statements may see different commits. SQLite's reads cost no round trip: unchanged."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema of ``database_url`` to ``revision`` (creates it on an empty database)."""
    from alembic import command

    engine = create_db_engine(database_url)
    try:
        try:
            with engine.connect():
                pass
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise ConfigError(unreachable_store(database_url, exc)) from None
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes (API and ingest workers) may start at once: one migrates,
                # the others wait here and then find the schema current.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
            cfg = alembic_config(database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
    log.info("database schema is at %s", revision, extra={"database": _redact(database_url)})


def unreachable_store(database_url: str, exc: Exception) -> str:
    """One line for a store that cannot be opened: which one, what it said, what to check."""
    orig = getattr(exc, "orig", None) or exc
    said = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__)
    where = _redact(database_url)
    if sa.make_url(database_url).get_backend_name() == "sqlite":
        return (f"cannot open the SQLite store {where}: {said}: make data_dir "
                "(PARKWATCH_DATA_DIR) writable, or set database_url")
    return (f"cannot connect to the database {where}: {said}: check that PostgreSQL runs "
            "there and that the role, its password and the database in database_url "
            "(PARKWATCH_DATABASE_URL) exist (docs/operations.md, step 1)")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


def store_exists(database_url: str) -> bool:
    """Whether ``database_url`` holds a parkwatch store (migrated at least once); creates
    nothing, so a command run from the wrong folder cannot leave an empty store behind."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or not Path(url.database).is_file()
    ):
        return False
    engine = create_db_engine(database_url)
    try:
        return current_revision(engine) is not None
    except sa.exc.OperationalError as exc:
        raise ConfigError(unreachable_store(database_url, exc)) from None
    finally:
        engine.dispose()


def describe_store(database_url: str) -> str:
    """The store for a message: its SQLite file, else its URL without the password."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return str(Path(url.database).resolve())
    return _redact(database_url)


def insert_ignore(session: Session, model: type[SQLModel], values: Mapping[str, Any]) -> bool:
    """INSERT that does nothing on a unique-key clash; True when a row was inserted.

    Race-free across processes (ON CONFLICT DO NOTHING on both SQLite and PostgreSQL).
    """
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - create_db_engine refuses other backends
        raise ConfigError(f"insert_ignore does not support {dialect}")
    # rowcount is -1 for this statement under psycopg 3; RETURNING is reliable on both.
    key = next(iter(table.primary_key.columns))
    return session.execute(stmt.returning(key)).first() is not None


def _redact(database_url: str) -> str:
    return sa.make_url(database_url).render_as_string(hide_password=True)
