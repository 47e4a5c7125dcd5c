"""The rollup upsert's rows as the text the writer puts together, against the same rows
dumped by the standard library, and each row's counts added up column by column."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from control_plane.services.telemetry_rollup_write import rows_json
from control_plane.services.telemetry_rollups import _Row

T0 = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)


def _dumped(rows: list[tuple[tuple[str, datetime, str, str, str, str], _Row, list[float]]]
            ) -> list[dict[str, object]]:
    out = []
    for key, row, counts in rows:
        v = row.values(key, counts)
        out.append({**v, "bucket": key[1].isoformat(),
                    "first_start": row.first_start.isoformat(),
                    "last_end": row.last_end.isoformat(),
                    "counts": "{" + ", ".join(str(c) for c in counts) + "}"})
    return out


def test_rows_text_reads_back_as_the_rows_with_any_ids() -> None:
    odd = 'cam "gate"\\ \u00e9\u2603\n\t'  # quotes, a backslash, non-ASCII, controls
    a = _Row([0, 0, 0], T0, T0 + timedelta(minutes=1))
    a.add([[1, 2, 3]])
    b = _Row(None, T0 - timedelta(hours=2), T0)  # a release with no profile
    b.windows, b.mismatched = 4, 1
    sums: dict[tuple[int, ...], list[float]] = {}
    rows = [(("hour", T0, "dev-1", "rel", "", ""), a, a.counts(sums)),
            (("hour", T0, 'dev-"2"', odd, odd, "night"), b, b.counts(sums))]
    assert json.loads(rows_json(rows)) == _dumped(rows)


def test_a_row_adds_its_windows_column_by_column_and_shares_equal_sums() -> None:
    device = _Row([0, 0], T0, T0)
    camera = _Row([0, 0], T0, T0)
    idle = _Row([0, 0], T0, T0)
    first, second = [1, 5], [2, 7]
    for flat in (first, second):
        device.add([flat])
        camera.add([flat])
    sums: dict[tuple[int, ...], list[float]] = {}
    assert device.counts(sums) == [3, 12]
    assert camera.counts(sums) is device.counts(sums)  # written out once
    assert first == [1, 5] and second == [2, 7]  # the windows' lists are left as they were
    assert idle.counts(sums) == [0, 0]
    one = _Row([0, 0], T0, T0)
    one.add([first, second])  # one window of two cameras
    assert one.counts({}) == [3, 12] and one.windows == 1
