"""``column IN (values)`` whose SQL text does not depend on how many values there are.

SQLAlchemy renders ``in_(values)`` with a placeholder per value at every execution, so
a batch of 37 devices and one of 38 are two statements: psycopg converts each one's text
afresh (it caches only statements of at most 50 parameters) and PostgreSQL parses and
plans each one, never preparing any. On PostgreSQL :func:`among` binds the values as ONE
array (``column = ANY(:values)``): one statement text for every batch, converted once,
and prepared by psycopg after a few executions. SQLite keeps the ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session


def among(session: Session, column: Any, values: Collection[Any]) -> sa.ColumnElement[bool]:
    """The WHERE clause ``column IN values`` (``values``: in the order to bind them)."""
    if session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam("among", list(values), type_=sa.ARRAY(column.type), unique=True)
        return column == sa.any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


__all__ = ["among"]
