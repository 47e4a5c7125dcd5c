"""PostgreSQL's side of window ingest: two fixed statements per batch, whatever its size.

A batch used to cost about ten round trips to the server (the device check, its
``last_seen`` update, the merge watermarks, the highest stored seq, a temporary table,
COPY, the move), and on a loaded machine each round trip waits for the server process
to be scheduled. Here:

- ``lookup``: one SELECT gives, per (device, instance) of the batch, whether the device
  exists, its merge watermark and its highest stored seq (an index-only ``max`` on the
  unique key, not a scan of the device's windows);
- ``insert``: one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING over the batch,
  which also touches the devices' ``last_seen``. The payloads go as one text, a line
  each (compact JSON has no raw line breaks: a newline in a string is written ``\n``),
  so the server parses each once, when it becomes the ``json`` column; the keys and
  times go beside them as a small JSON array read by ``json_to_recordset`` in step
  (``ROWS FROM``). Sent as one JSON array of the payloads that carried their own keys,
  the batch was parsed four times (two casts to ``json``, ``json_array_elements`` and
  ``json_to_recordset``): 10-20 us of the server's 54-67 us a window. The fleet page's
  two chart figures come beside them as two arrays in the batch's order
  (``fleet_summary.chart_figures``'s reading, taken from the models).

Both are constant texts, so psycopg parses them once and prepares them on the server
after a few batches. The batch is one text parameter: as arrays (one per column) psycopg
dumped every element in Python, in text format escaping each with a regular expression
(two thirds of the writer's CPU time), in binary still a fifth of it.

``last_seen`` skips a device row that another transaction holds (``SKIP LOCKED``):
ingest workers in a shared subscription get windows of the same devices, and waiting
for each other's row locks until commit made their transactions run one at a time.
The holder is setting the same "seen now" (or a status), so nothing is lost that the
next batch would not write again. The lock taken is ``FOR NO KEY UPDATE`` (what the
UPDATE itself takes): the windows' foreign key reads each device row ``FOR KEY SHARE``,
which ``FOR UPDATE`` blocks, so another worker's windows of a device this batch touched
waited for this batch's commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from protocols import TelemetryWindow

from .telemetry_binning import Binned

Key = tuple[str, str, int]  # (device_id, instance, seq)


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the store knows of one (device, instance) before a batch is written."""

    known: bool  # the device exists
    merged_seq: int | None  # retention's watermark: a window at or below it is refused
    highest: int | None  # the highest seq stored

_LOOKUP = """
SELECT k.device_id, k.instance, d.device_id IS NOT NULL, m.merged_seq,
       (SELECT max(w.seq) FROM telemetry_window w
        WHERE w.device_id = k.device_id AND w.instance = k.instance)
FROM unnest(%(device_id)b::text[], %(instance)b::text[]) AS k(device_id, instance)
LEFT JOIN device d ON d.device_id = k.device_id
LEFT JOIN telemetry_watermark m ON m.device_id = k.device_id AND m.instance = k.instance
"""

# What the insert reads beside each payload (pydantic writes them about twice as fast as
# ``json.dumps`` of a dict with the times' ``isoformat``, and as the payload has them).
_KEY_FIELDS = {"device_id", "instance", "seq", "window_start", "window_end", "release_id"}

_INSERT = """
WITH batch AS (
    SELECT *
    FROM ROWS FROM (
        unnest(string_to_array(%(payloads)s, E'\\n')),
        json_to_recordset(%(keys)s::json) AS (
            device_id text, instance text, seq bigint, window_start timestamptz,
            window_end timestamptz, release_id text),
        unnest(%(fps)s::float8[]),
        unnest(%(p95)s::float8[]),
        unnest(string_to_array(%(rows)s, ',')),
        json_array_elements(%(cameras)s::json)
    ) AS b(p, device_id, instance, seq, window_start, window_end, release_id, fps, p95,
           drift_rows, drift_cameras)
), touched AS (
    UPDATE device SET last_seen = %(now)s
    WHERE device_id IN (
        SELECT device_id FROM device
        WHERE device_id IN (SELECT device_id FROM batch)
          AND (last_seen IS NULL OR last_seen < %(now)s)
        FOR NO KEY UPDATE SKIP LOCKED)
)
INSERT INTO telemetry_window
    (device_id, instance, seq, window_start, window_end, release_id, received_at, payload,
     inference_fps, latency_p95_ms, drift_rows, drift_cameras)
SELECT device_id, coalesce(instance, ''), seq, window_start, window_end, release_id,
       %(now)s, p::json, fps, p95,
       CASE WHEN drift_rows <> '-' THEN decode(substr(drift_rows, 2), 'hex') END,
       CASE WHEN json_typeof(drift_cameras) = 'array' THEN drift_cameras::text END
FROM batch
ON CONFLICT DO NOTHING
RETURNING device_id, instance, seq
"""


def lookup(session: Session, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], KeyState]:
    """Each (device, instance): known device?, merge watermark, highest stored seq."""
    ordered = sorted(keys)
    rows = session.connection().exec_driver_sql(_LOOKUP, {
        "device_id": [d for d, _ in ordered], "instance": [i for _, i in ordered]}).all()
    return {(d, i): KeyState(bool(known), None if mark is None else int(mark),
                             None if high is None else int(high))
            for d, i, known, mark, high in rows}


def insert(session: Session, windows: Sequence[TelemetryWindow], now: datetime,
           binned: Sequence[Binned]) -> set[Key]:
    """Insert the windows that are new and touch their devices; returns the keys stored.
    ``binned``: beside each window, its drift columns (``telemetry_rollups.binned``)."""
    payloads = "\n".join(w.model_dump_json(by_alias=True) for w in windows)
    keys = "[" + ",".join(w.model_dump_json(include=_KEY_FIELDS) for w in windows) + "]"
    # The chart figures from the models, in the batch's order: read out of each payload by
    # the server they cost half as much again as the whole insert (json is parsed per use).
    fps = _floats([float(sum(c.inference_fps for c in w.cameras)) for w in windows])
    p95 = _floats([max((c.inference_ms.p95 for c in w.cameras if c.inference_ms is not None),
                       default=None) for w in windows])
    # The drift columns as two texts in the batch's order: each window's rows as hex after
    # an 'x' ('-': NULL; a window without cameras is 'x'), its cameras as a JSON array
    # (null: NULL). As a bytea[] parameter psycopg would dump each element in Python.
    rows = ",".join("-" if b.columns["drift_rows"] is None else "x" + b.columns["drift_rows"].hex()
                    for b in binned)
    cameras = "[" + ",".join(b.columns["drift_cameras"] or "null" for b in binned) + "]"
    result = session.connection().exec_driver_sql(
        _INSERT, {"payloads": payloads, "keys": keys, "now": now, "fps": fps, "p95": p95,
                  "rows": rows, "cameras": cameras})
    return {(d, n, int(q)) for d, n, q in result.all()}


def _floats(values: Sequence[float | None]) -> str:
    """A float8[] literal (None: NULL): as a list psycopg dumps each element in Python;
    ``repr`` is the shortest text that reads back as the same double."""
    return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
