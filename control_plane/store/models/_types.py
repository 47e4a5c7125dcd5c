"""Column types and defaults every table uses: UTC timestamps, JSON, big ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; reads them back aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


# Row ids of the high-volume tables: BIGINT on PostgreSQL; SQLite's rowid alias must be
# spelled INTEGER (a BIGINT primary key there would not autoincrement).


# Row ids of the high-volume tables: BIGINT on PostgreSQL; SQLite's rowid alias must be
# spelled INTEGER (a BIGINT primary key there would not autoincrement).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
