"""Telemetry retention: merge old windows into coarser ones, delete very old ones (and
old drift reports that no alert points at, and old rollup rows: hourly after
``rollup_hours_keep_days`` once folded into their days, daily after
``rollup_days_keep_days``).

Windows are aged by ``received_at`` (the control plane's clock; an agent's clock may be
far off). Windows are mergeable summaries, so an agent instance's windows of one release
received in one bucket (``bucket_minutes``) add up to one window with the same
histograms in total: drift over old ranges stays exact, only the time resolution drops.
The merged window keeps the lowest seq of its group and spans the group's times;
counters add up, rates average, and latency percentiles (not mergeable) are dropped.
Windows binned on different edges are never merged. Each pass raises the instance's
watermark (``TelemetryWatermark``) to the highest seq it looked at, and ingest refuses
windows at or below it: a re-send of a merged window would otherwise be counted twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from protocols import TelemetryWindow

from ..config.retention import RetentionSettings
from ..store.models import (
    Alert,
    DeadLetter,
    DriftReport,
    TelemetryRollup,
    TelemetryWatermark,
    TelemetryWindowRecord,
)
from .fleet_summary import chart_figures
from .telemetry_rollup_fold import fold
from .telemetry_rollups import DAY, floor

log = logging.getLogger(__name__)
_SUMS = ("frames_captured", "frames_inferred", "frames_skipped", "frames_lost", "errors",
         "reconnects", "stalls")
_MEANS = ("capture_fps", "inference_fps")
_PERCENTILES = ("frame_age_ms", "inference_ms", "e2e_ms")
DEVICES_PER_PASS = 50  # devices whose windows one downsampling pass holds in memory


class NotMergeable(ValueError):
    """Windows whose histograms use different bins."""


def _add_lists(a: list[float], b: list[float]) -> list[float]:
    if len(a) != len(b):
        raise NotMergeable("histograms with different bins")
    return [x + y for x, y in zip(a, b, strict=True)]


def _add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}


def _merge_camera(acc: dict[str, Any], cam: dict[str, Any], n: int) -> dict[str, Any]:
    out = dict(cam)  # the latest window's state and camera id
    for key in _SUMS:
        out[key] = acc.get(key, 0) + cam.get(key, 0)
    for key in _MEANS:  # mean over the n windows merged so far
        out[key] = (acc.get(key, 0.0) * (n - 1) + cam.get(key, 0.0)) / n
    for key in _PERCENTILES:
        out[key] = None
    out["class_counts"] = _add_counts(acc.get("class_counts", {}), cam.get("class_counts", {}))
    out["confidence_hist"] = _add_lists(acc.get("confidence_hist", []),
                                        cam.get("confidence_hist", []))
    a_in, c_in = acc.get("input_hists", {}), cam.get("input_hists", {})
    if set(a_in) != set(c_in):
        raise NotMergeable("different input statistics")
    out["input_hists"] = {k: _add_lists(a_in[k], c_in[k]) for k in a_in}
    a_emb, c_emb = acc.get("embedding_hists", []), cam.get("embedding_hists", [])
    if len(a_emb) != len(c_emb):
        raise NotMergeable("different embedding axes")
    out["embedding_hists"] = [_add_lists(x, y) for x, y in zip(a_emb, c_emb, strict=True)]
    return out


def merge_windows(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``TelemetryWindow`` JSON that sums ``payloads`` (same device, ordered by seq)."""
    first, last = payloads[0], payloads[-1]
    cameras: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = defaultdict(int)
    for p in payloads:
        for cam in p.get("cameras", []):
            cid = cam["camera_id"]
            seen[cid] += 1
            cameras[cid] = (_merge_camera(cameras[cid], cam, seen[cid]) if cid in cameras
                            else {**cam, **dict.fromkeys(_PERCENTILES)})
    merged = {
        **first,
        "seq": min(p["seq"] for p in payloads),
        "window_start": min(p["window_start"] for p in payloads),
        "window_end": max(p["window_end"] for p in payloads),
        "cameras": list(cameras.values()),
        "shadow": None,  # shadow summaries belong to rollouts that are long over
        "cpu_percent": sum(p.get("cpu_percent", 0.0) for p in payloads) / len(payloads),
        "rss_bytes": max(p.get("rss_bytes", 0) for p in payloads),
        "dropped_windows": sum(p.get("dropped_windows", 0) for p in payloads),
        "dropped_events": sum(p.get("dropped_events", 0) for p in payloads),
        "model_version": last.get("model_version"),
    }
    return TelemetryWindow.model_validate(merged).model_dump(mode="json", by_alias=True)


@dataclass
class RetentionResult:
    deleted: int = 0
    deleted_reports: int = 0
    merged_groups: int = 0
    merged_windows: int = 0
    unmergeable_groups: int = 0
    deleted_rollups: int = 0


def _delete_rollups(session: Session, rs: RetentionSettings, now: datetime) -> int:
    """Old rollup rows: hourly ones first, daily ones much later. Raw windows are never
    their source once stored, so deleting or merging windows leaves them as they are.
    Hours go only once folded into their day (``apply_retention`` folds first), and by
    whole days: a day read from its hours (one stored into after its fold) must have all
    of them."""
    r = TelemetryRollup
    hours_before = floor(now - timedelta(days=rs.rollup_hours_keep_days), DAY)
    gone = session.execute(delete(r).where(
        col(r.grain) == "hour", col(r.folded), col(r.bucket) < hours_before))
    deleted = int(getattr(gone, "rowcount", 0) or 0)
    gone = session.execute(delete(r).where(
        col(r.grain) == "day", col(r.bucket) < now - timedelta(days=rs.rollup_days_keep_days)))
    return deleted + int(getattr(gone, "rowcount", 0) or 0)


def apply_retention(session: Session, rs: RetentionSettings, now: datetime) -> RetentionResult:
    """Delete windows past ``delete_after_days``; merge those past ``downsample_after_hours``
    (looking back one day past the horizon each run). Commits."""
    fold(session, now)  # no hour row is deleted before its day holds it
    result = RetentionResult()
    table = TelemetryWindowRecord
    cutoff = now - timedelta(days=rs.delete_after_days)
    gone = session.execute(delete(table).where(col(table.received_at) < cutoff))
    result.deleted = int(getattr(gone, "rowcount", 0) or 0)
    alerted = select(Alert.drift_report_id).where(col(Alert.drift_report_id).is_not(None))
    old_reports = session.execute(
        delete(DriftReport).where(
            col(DriftReport.created_at) < now - timedelta(days=rs.reports_keep_days),
            col(DriftReport.id).not_in(alerted),
        )
    )
    result.deleted_reports = int(getattr(old_reports, "rowcount", 0) or 0)
    result.deleted_rollups = _delete_rollups(session, rs, now)
    session.commit()
    horizon = now - timedelta(hours=rs.downsample_after_hours)
    since = max(horizon - timedelta(days=1), cutoff)
    in_range = (col(table.received_at) < horizon, col(table.received_at) >= since)
    device_ids = sorted(session.exec(select(table.device_id).where(*in_range).distinct()).all())
    bucket = timedelta(minutes=rs.bucket_minutes).total_seconds()
    # A day of a big fleet is millions of windows: merge a few devices at a time, each
    # pass its own transaction (a run stopped half way leaves whole merges behind).
    for i in range(0, len(device_ids), DEVICES_PER_PASS):
        rows = session.exec(
            select(table)
            .where(*in_range, col(table.device_id).in_(device_ids[i : i + DEVICES_PER_PASS]))
            .order_by(col(table.device_id), col(table.seq))
        ).all()
        _merge_groups(session, rows, bucket, result)
        _raise_watermarks(session, rows)
        session.commit()
        session.expunge_all()  # let the pass's rows go
    log.info("telemetry retention done", extra={"deleted": result.deleted,
                                                "merged_windows": result.merged_windows,
                                                "merged_groups": result.merged_groups})
    return result


def _merge_groups(
    session: Session, rows: Sequence[TelemetryWindowRecord], bucket: float,
    result: RetentionResult,
) -> None:
    """Merge each (device, instance, release, bucket) group of ``rows`` into its first."""
    groups: dict[tuple[str, str, str | None, int], list[TelemetryWindowRecord]] = (
        defaultdict(list))
    for row in rows:
        key = (row.device_id, row.instance, row.release_id,
               int(row.received_at.timestamp() // bucket))
        groups[key].append(row)
    for members in groups.values():
        if len(members) < 2:
            continue
        try:
            merged = merge_windows([m.payload for m in members])
        except (NotMergeable, ValueError) as exc:
            result.unmergeable_groups += 1
            log.warning("telemetry windows not merged: %s", exc,
                        extra={"device_id": members[0].device_id})
            continue
        keep = members[0]
        keep.payload = merged
        # Binned from the first window alone: the analysis reads the merged JSON instead.
        keep.drift_rows, keep.drift_cameras = None, None
        figures = chart_figures(merged)
        keep.inference_fps, keep.latency_p95_ms = (figures["inference_fps"],
                                                   figures["latency_p95_ms"])
        keep.window_start = min(m.window_start for m in members)
        keep.window_end = max(m.window_end for m in members)
        keep.received_at = max(m.received_at for m in members)
        session.add(keep)
        for m in members[1:]:
            session.delete(m)
        result.merged_groups += 1
        result.merged_windows += len(members)


def _raise_watermarks(session: Session, rows: Sequence[TelemetryWindowRecord]) -> None:
    """Each instance's watermark to at least the highest seq among ``rows``."""
    highest: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.device_id, row.instance)
        highest[key] = max(highest.get(key, row.seq), row.seq)
    if not highest:
        return
    table: sa.Table = TelemetryWatermark.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values([{"device_id": d, "instance": i, "merged_seq": q}
                                 for (d, i), q in sorted(highest.items())])
    # Never lowered: SQLite's two-argument max() is PostgreSQL's greatest().
    larger = sa.func.greatest if session.get_bind().dialect.name == "postgresql" else sa.func.max
    merged_seq = larger(table.c.merged_seq, stmt.excluded.merged_seq)
    session.execute(stmt.on_conflict_do_update(index_elements=["device_id", "instance"],
                                               set_={"merged_seq": merged_seq}))


def watermarks(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The merged watermark of each (device, instance) that has one."""
    wanted = set(keys)
    if not wanted:
        return {}
    t = TelemetryWatermark
    rows = session.exec(select(t.device_id, t.instance, t.merged_seq).where(
        col(t.device_id).in_(sorted({d for d, _ in wanted})))).all()
    return {(d, i): int(q) for d, i, q in rows if (d, i) in wanted}


__all__ = ["NotMergeable", "RetentionResult", "apply_retention", "merge_windows", "watermarks"]


def prune_dead_letters(session: Session, keep_days: float, now: datetime) -> int:
    """Delete kept messages (dead letters) received more than ``keep_days`` ago: a replayed
    one is deleted when it is stored, so these were never replayed, and a window that old
    is past telemetry retention anyway; how many went. Commits."""
    gone = session.execute(delete(DeadLetter).where(
        col(DeadLetter.received_at) < now - timedelta(days=keep_days)))
    session.commit()
    return int(getattr(gone, "rowcount", 0) or 0)
