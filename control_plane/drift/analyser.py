"""Drift analysis over the store: per device and fleet-wide, over a sliding time range.

For every release seen in the range, windows are merged per device and across the
fleet and compared with the release's reference profile (from its model version).
Each device's latest N windows are also judged one by one; a device whose drift
holds in K of them counts as drifted, and M drifted devices raise (or keep) the
release's drift alert. The fleet's estimated accuracy raises the accuracy alert.
Reports and alert changes are committed together; webhooks fire after the commit.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from protocols import ReferenceProfile

from ..models import ModelVersion, Release, TelemetryWindowRecord, utc_now
from ..services import alerts
from . import metrics
from .compare import compare, window_drifted
from .settings import DriftSettings
from .summary import Summary

log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    """What one analysis wrote: fleet report id per release, device reports, alert changes."""

    fleet_reports: dict[str, int] = field(default_factory=dict)
    device_reports: int = 0
    drifted_devices: dict[str, list[str]] = field(default_factory=dict)
    changes: list[alerts.AlertChange] = field(default_factory=list)
    skipped_releases: list[str] = field(default_factory=list)


def reference_profile(session: Session, release_id: str) -> ReferenceProfile | None:
    """The reference profile of a release's model version (None: unknown release)."""
    row = session.exec(
        select(ModelVersion.spec)
        .join(Release, col(Release.model_version_id) == col(ModelVersion.id))
        .where(Release.release_id == release_id)
    ).first()
    if row is None or "reference_profile" not in row:
        return None
    return ReferenceProfile.model_validate(row["reference_profile"])


@dataclass
class _Device:
    summary: Summary
    recent: deque[dict[str, Any]]
    start: datetime
    end: datetime


def _windows(
    session: Session, start: datetime, end: datetime, release_id: str | None
) -> Any:
    query = (
        sa.select(
            col(TelemetryWindowRecord.release_id),
            col(TelemetryWindowRecord.device_id),
            col(TelemetryWindowRecord.window_start),
            col(TelemetryWindowRecord.window_end),
            col(TelemetryWindowRecord.payload),
        )
        .where(
            col(TelemetryWindowRecord.window_end) > start,
            col(TelemetryWindowRecord.window_end) <= end,
            col(TelemetryWindowRecord.release_id).is_not(None),
        )
        # A device's seq is its own clock: "latest N windows" holds for late arrivals too.
        .order_by(col(TelemetryWindowRecord.device_id), col(TelemetryWindowRecord.seq))
    )
    if release_id is not None:
        query = query.where(col(TelemetryWindowRecord.release_id) == release_id)
    return session.execute(query.execution_options(yield_per=2000))


def _collect(
    session: Session,
    settings: DriftSettings,
    start: datetime,
    end: datetime,
    release_id: str | None,
) -> tuple[dict[str, ReferenceProfile], dict[str, dict[str, _Device]], list[str]]:
    profiles: dict[str, ReferenceProfile | None] = {}
    devices: dict[str, dict[str, _Device]] = {}
    for rel, device_id, w_start, w_end, payload in _windows(session, start, end, release_id):
        if rel not in profiles:
            profiles[rel] = reference_profile(session, rel)
        profile = profiles[rel]
        if profile is None:
            continue
        per_release = devices.setdefault(rel, {})
        dev = per_release.get(device_id)
        if dev is None:
            dev = per_release[device_id] = _Device(
                Summary.empty(profile), deque(maxlen=settings.alert_windows), w_start, w_end
            )
        if dev.summary.add_window(payload):
            dev.recent.append(payload)
        dev.start, dev.end = min(dev.start, w_start), max(dev.end, w_end)
    known = {k: v for k, v in profiles.items() if v is not None}
    return known, devices, sorted(k for k, v in profiles.items() if v is None)


def _device_holds(
    profile: ReferenceProfile, dev: _Device, settings: DriftSettings
) -> dict[str, Any]:
    verdicts = [window_drifted(profile, w, settings) for w in dev.recent]
    drifted = sum(1 for v in verdicts if v)
    return {
        "windows": len(verdicts),
        "judged": sum(1 for v in verdicts if v is not None),
        "drifted": drifted,
        "holds": drifted >= settings.alert_drifted_windows,
        "k": settings.alert_drifted_windows,
        "n": settings.alert_windows,
    }


def run_analysis(
    session: Session,
    settings: DriftSettings,
    *,
    now: datetime | None = None,
    range_minutes: int | None = None,
    release_id: str | None = None,
) -> AnalysisResult:
    """Write device and fleet drift reports for the range ending at ``now``; reconcile alerts.

    Commits; then POSTs opened/resolved alerts to the webhook, if one is configured.
    """
    t0 = time.perf_counter()
    end = now or utc_now()
    start = end - timedelta(minutes=range_minutes or settings.range_minutes)
    profiles, devices, unknown = _collect(session, settings, start, end, release_id)
    result = AnalysisResult(skipped_releases=unknown)
    for rel, per_device in sorted(devices.items()):
        profile = profiles[rel]
        fleet = Summary.empty(profile)
        drifted: list[str] = []
        for device_id, dev in sorted(per_device.items()):
            stats = compare(profile, dev.summary, settings)
            stats["recent"] = _device_holds(profile, dev, settings)
            if stats["recent"]["holds"]:
                drifted.append(device_id)
            alerts.record_drift_report(
                session,
                device_id=device_id,
                release_id=rel,
                window_start=dev.start,
                window_end=dev.end,
                window_count=dev.summary.windows,
                sample_count=dev.summary.frames,
                drifted=bool(stats["drifted"]),
                statistics=stats,
            )
            result.device_reports += 1
            fleet.merge(dev.summary)
        stats = compare(profile, fleet, settings)
        stats["devices"] = len(per_device)
        stats["drifted_devices"] = drifted
        stats["min_devices"] = settings.alert_min_devices
        report = alerts.record_drift_report(
            session,
            device_id=None,
            release_id=rel,
            window_start=min(d.start for d in per_device.values()),
            window_end=max(d.end for d in per_device.values()),
            window_count=fleet.windows,
            sample_count=fleet.frames,
            drifted=len(drifted) >= settings.alert_min_devices,
            statistics=stats,
        )
        result.fleet_reports[rel] = report.id or 0
        result.drifted_devices[rel] = drifted
        result.changes.extend(_reconcile(session, settings, rel, report.id, stats, drifted))
        _export_metrics(rel, stats, len(drifted))
    session.commit()
    alerts.notify_webhook(
        str(settings.webhook_url) if settings.webhook_url else None,
        result.changes,
        settings.webhook_timeout_s,
    )
    metrics.ANALYSIS_SECONDS.observe(time.perf_counter() - t0)
    log.info(
        "drift analysis done",
        extra={
            "releases": len(result.fleet_reports),
            "device_reports": result.device_reports,
            "alert_changes": [c.action for c in result.changes if c.action != "updated"],
        },
    )
    return result


def _reconcile(
    session: Session,
    settings: DriftSettings,
    release_id: str,
    report_id: int | None,
    stats: dict[str, Any],
    drifted: list[str],
) -> list[alerts.AlertChange]:
    m = settings.alert_min_devices
    holds = len(drifted) >= m
    drift_msg = (
        f"drift on {len(drifted)} device(s) of release {release_id} "
        f"(K={settings.alert_drifted_windows} of N={settings.alert_windows} windows, M={m}): "
        f"{', '.join(drifted[:10])}; fleet features "
        f"{', '.join(stats['drifted_features']) or 'none'}"
        if holds
        else f"drift subsided: {len(drifted)} device(s) drifted, fewer than M={m}"
    )
    changes = [
        alerts.reconcile_alert(
            session,
            "drift",
            release_id,
            firing=holds,
            severity="warning",
            message=drift_msg,
            detail={"devices": drifted, "features": stats["drifted_features"]},
            drift_report_id=report_id,
        )
    ]
    est, drop = stats["estimated_accuracy"], stats["accuracy_drop"]
    if est is not None:  # too few frames: leave the accuracy alert as it is
        low = bool(stats["accuracy_dropped"])
        acc_msg = (
            f"estimated accuracy of release {release_id} is {est:.3f}, "
            f"{drop:.3f} below the reference {stats['reference_accuracy']:.3f}"
        )
        changes.append(
            alerts.reconcile_alert(
                session,
                "accuracy",
                release_id,
                firing=low,
                severity="warning",
                message=acc_msg if low else f"estimated accuracy recovered: {acc_msg}",
                detail={"estimated_accuracy": est, "drop": drop},
                drift_report_id=report_id,
            )
        )
    return [c for c in changes if c is not None]


def _export_metrics(release_id: str, stats: dict[str, Any], drifted: int) -> None:
    metrics.DRIFTED_DEVICES.labels(release_id).set(drifted)
    if stats["estimated_accuracy"] is not None:
        metrics.ESTIMATED_ACCURACY.labels(release_id).set(stats["estimated_accuracy"])
    for feature, f in [*stats["features"].items(), ("classes", stats["classes"])]:
        if f.get("judged"):
            metrics.FLEET_PSI.labels(release_id, feature).set(f["psi"])
            metrics.FLEET_PSI_ALARM.labels(release_id, feature).set(f["psi_alarm"])


__all__ = ["AnalysisResult", "reference_profile", "run_analysis"]
