"""How a batch's rollup rows are written: one upsert that adds them into the stored hour
rows (``telemetry_rollups.add`` builds the rows). On PostgreSQL the addition happens in
the statement, so ingest workers sharing the fleet may add into one row at once; SQLite
has one writer, so the stored rows are read and added to in Python first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from ..store.models import TelemetryRollup

Key = tuple[str, datetime, str, str, str, str]  # grain, bucket, device, release, camera, cond.


class Counted(Protocol):
    """A batch's row as the upsert reads it (its counts beside it)."""

    windows: int
    mismatched: int
    first_start: datetime
    last_end: datetime


def add_counts(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Two rows' counts of one key added. Empty counts are zeros of any length: the windows
    a release sent before it was registered are counted without its profile's bins, and
    the windows after the registration add into the same hour."""
    if not a or not b:
        return list(a or b)
    return [x + y for x, y in zip(a, b, strict=True)]


_TABLE: sa.Table = TelemetryRollup.__table__  # type: ignore[attr-defined]
_KEY = ("grain", "bucket", "device_id", "release_id", "camera_id", "condition")
_VALUES = ("windows", "mismatched", "first_start", "last_end", "counts", "folded")
_KEY_SQL = ", ".join(_KEY)
_COLUMNS_SQL = ", ".join(_KEY + _VALUES)
# The batch's rows go as one JSON text parameter, typed by the table's own row type, in
# key order, so two workers adding into the same rows lock them in the same order.
# The element-wise sum: two set-returning functions in one select list step in lock-step,
# in storage order (no ORDER BY: the sort made the sum cost twice as much), without the
# materialisation ``FROM unnest(a, b)`` costs. Empty counts (no profile) add as zeros
# (``add_counts``): in lock-step the shorter array would give NULLs.
_UPSERT = f"""
INSERT INTO telemetry_rollup ({_COLUMNS_SQL})
SELECT {_COLUMNS_SQL}
FROM json_populate_recordset(NULL::telemetry_rollup, %(rows)s::json)
ORDER BY {_KEY_SQL}
ON CONFLICT ({_KEY_SQL}) DO UPDATE SET
    windows = telemetry_rollup.windows + excluded.windows,
    mismatched = telemetry_rollup.mismatched + excluded.mismatched,
    first_start = least(telemetry_rollup.first_start, excluded.first_start),
    last_end = greatest(telemetry_rollup.last_end, excluded.last_end),
    counts = CASE WHEN cardinality(telemetry_rollup.counts) = 0 THEN excluded.counts
                  WHEN cardinality(excluded.counts) = 0 THEN telemetry_rollup.counts
                  ELSE ARRAY(SELECT unnest(telemetry_rollup.counts) + unnest(excluded.counts))
             END,
    folded = false
"""


def rows_json(rows: Sequence[tuple[Key, Counted, list[float]]]) -> str:
    """The batch's rows (key, row, its counts) as the upsert's one JSON parameter.

    One statement for the batch, whatever its size: as an executemany of one row each (a
    pipeline of hundreds of statements), the statements cost the server and psycopg more
    than the rows. Each row's counts go as an array literal in a JSON string, not as a JSON
    array: the server reads a literal into float8[] in under half the time (the JSON array
    is parsed element by element through the JSON parser's callbacks). A literal is a
    list's own text (``str``, in C) less its brackets (the server's array reader takes the
    blanks after the commas), written once per list: a window's one camera row and its
    device's row share theirs. The rows' text is put together here, not dumped from a dict
    a row (building the dicts and dumping them was a quarter of the writer's CPU a window
    when each window has rows of its own); only the texts (ids, camera, condition) are
    escaped, once each, and each distinct time is written once (an ``isoformat`` is about
    1 us; a batch shares its hour, a window's rows share its span)."""
    literals: dict[int, str] = {}
    texts: dict[str, str] = {}
    times: dict[datetime, str] = {}

    def text(value: str) -> str:
        found = texts.get(value)
        if found is None:
            found = texts[value] = json.dumps(value)
        return found

    def moment(t: datetime) -> str:
        found = times.get(t)
        if found is None:
            found = times[t] = t.isoformat()
        return found

    out = []
    for (grain, b, device_id, release_id, camera_id, condition), row, counts in rows:
        literal = literals.get(id(counts))
        if literal is None:
            literal = literals[id(counts)] = "{" + str(counts)[1:-1] + "}"
        out.append(
            f'{{"grain":{text(grain)},"bucket":"{moment(b)}","device_id":{text(device_id)},'
            f'"release_id":{text(release_id)},"camera_id":{text(camera_id)},'
            f'"condition":{text(condition)},"windows":{row.windows:d},'
            f'"mismatched":{row.mismatched:d},"first_start":"{moment(row.first_start)}",'
            f'"last_end":"{moment(row.last_end)}","counts":"{literal}","folded":false}}')
    return "[" + ",".join(out) + "]"


def upsert_sqlite(session: Session, values: list[dict[str, Any]]) -> None:
    t = _TABLE.c
    keys = [tuple(v[k] for k in _KEY) for v in values]
    stored = {
        tuple(r[:6]): r[6:]
        for r in session.execute(
            sa.select(*(t[k] for k in _KEY + _VALUES))
            .where(sa.tuple_(*(t[k] for k in _KEY)).in_(keys))
        )
    }
    for key, v in zip(keys, values, strict=True):
        old = stored.get(key)
        if old is None:
            continue
        windows, mismatched, first_start, last_end, counts, _ = old
        v["windows"] += windows
        v["mismatched"] += mismatched
        v["first_start"] = min(first_start, v["first_start"])
        v["last_end"] = max(last_end, v["last_end"])
        v["counts"] = add_counts(counts, v["counts"])
    stmt = sqlite.insert(_TABLE)
    session.execute(stmt.on_conflict_do_update(
        index_elements=list(_KEY), set_={c: stmt.excluded[c] for c in _VALUES},
    ), values)


def upsert_postgres(session: Session, rows: Sequence[tuple[Key, Counted, list[float]]]) -> None:
    """The batch's rows (key order) added into the stored ones in one statement."""
    session.connection().exec_driver_sql(_UPSERT, {"rows": rows_json(rows)})


__all__ = ["Counted", "Key", "add_counts", "rows_json", "upsert_postgres", "upsert_sqlite"]
