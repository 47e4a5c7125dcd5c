"""``Summary``'s flat buffer: what it sums is each accepted window's cameras, computed here
independently with numpy; a window whose bins do not fit leaves nothing behind; the
buffer stays bounded however many windows are added."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from control_plane.drift import summary, synthetic
from control_plane.drift.summary import Summary

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REF = synthetic.profile()


def payload(seq: int) -> dict[str, Any]:
    """Two cameras, the second idle every third window; every fifth window's second
    camera has bins that do not fit the profile."""
    rng = np.random.default_rng(seq)
    w = synthetic.window(REF, "cam-a", seq, rng=rng, frames=40, start=T0)
    other = synthetic.window(REF, "cam-a", seq, rng=rng, frames=30, start=T0)["cameras"][0]
    other = {**other, "camera_id": "yard"}
    if seq % 3 == 0:
        other["confidence_hist"] = [0] * len(other["confidence_hist"])
    if seq % 5 == 0:
        other["input_hists"] = {**other["input_hists"], "contrast": [1, 2]}
    w["cameras"].append(other)
    return w


def camera_vector(camera: dict[str, Any]) -> np.ndarray:
    parts = [camera["confidence_hist"], *(camera["input_hists"][k] for k in REF.input_stats),
             *camera["embedding_hists"], [camera["class_counts"][k] for k in REF.class_counts]]
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])


def busy(w: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in w["cameras"] if sum(c["confidence_hist"])]


def fits(w: dict[str, Any]) -> bool:
    """Every busy camera's bins fit the profile (idle cameras are never looked at)."""
    return all(len(c["input_hists"][k]) == len(h.counts)
               for c in busy(w) for k, h in REF.input_stats.items())


@pytest.mark.parametrize("flush_rows", [1, 7, summary.FLUSH_ROWS])
def test_sums_each_accepted_windows_busy_cameras(
    flush_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summary, "FLUSH_ROWS", flush_rows)
    windows = [payload(seq) for seq in range(1, 41)]
    s = Summary.empty(REF)
    accepted = [s.add_window(w) for w in windows]
    expected = sum(camera_vector(c) for w in windows if fits(w) for c in busy(w))
    np.testing.assert_array_equal(s.flush(), expected)
    assert accepted == [fits(w) for w in windows]
    assert 0 < s.mismatched < s.windows and s.windows + s.mismatched == len(windows)
    assert [Summary.empty(REF).fits(w) for w in windows] == accepted
    rolled = Summary.empty(REF)  # a rolled-up vector adds as its windows did
    rolled.add_counts(s.flush().tolist(), s.windows, s.mismatched)
    np.testing.assert_array_equal(rolled.flush(), s.flush())
    assert (rolled.windows, rolled.mismatched) == (s.windows, s.mismatched)


def test_the_buffer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "FLUSH_ROWS", 10)
    s = Summary.empty(REF)
    for seq in range(1, 200):
        s.add_window(payload(seq))
        assert len(s._pending) < 10 * s.flat.size + 2 * s.flat.size
