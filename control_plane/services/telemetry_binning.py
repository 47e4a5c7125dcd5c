"""Each window binned once at ingest, before its insert: on its release's profile bins,
for its drift columns (``drift.stored_rows``, written in the insert) and for the rollups
(``telemetry_rollups.add``, in the same transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from protocols import TelemetryWindow

from ..drift import stored_rows
from ..drift.region_features import FIELDS
from ..drift.summary import Summary
from .telemetry_rollups import profiles


def counted(window: TelemetryWindow) -> dict[str, Any]:
    """The part of a window's JSON payload that ``binned`` and ``telemetry_rollups.add``
    read (its cameras' counts, ids, conditions and region fields), taken from the model:
    the lists are the model's own, never changed."""
    return {"cameras": [
        {"camera_id": c.camera_id, "condition": c.condition,
         "confidence_hist": c.confidence_hist, "input_hists": c.input_hists,
         "embedding_hists": c.embedding_hists, "class_counts": c.class_counts,
         **{k: getattr(c, k) for k in FIELDS}}
        for c in window.cameras]}


@dataclass
class Binned:
    """A window binned once at ingest: its cameras on its release's bins (``flat``, None:
    no profile or other bins), for the rollups, and its drift columns (``stored_rows``),
    for the insert."""

    flat: list[float] | None
    columns: dict[str, Any]


def binned(session: Session, windows: Sequence[tuple[str | None, dict[str, Any]]]
           ) -> list[Binned]:
    """Each (release id, payload) binned on its release's profile: what ``add`` and the
    drift columns need, computed once per window before the insert."""
    found = profiles(session, {r for r, _ in windows if r is not None})
    bins = {r: Summary.empty(p) for r, p in found.items() if p is not None}
    flats: list[list[float] | None] = []
    for release_id, payload in windows:
        b = bins.get(release_id or "")
        flats.append(None if b is None else stored_rows.flat_rows(
            b, payload.get("cameras") or []))
    stored = stored_rows.encode_many(flats)
    return [Binned(f, {"drift_rows": data, "drift_cameras": None if data is None
                       else stored_rows.cameras_json(payload.get("cameras") or [])})
            for f, data, (_, payload) in zip(flats, stored, windows, strict=True)]


__all__ = ["Binned", "binned", "counted"]
