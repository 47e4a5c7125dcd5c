"""What a release's fleet drift report changes outside the store's reports: its drift and
accuracy alerts, reconciled in the analysis's transaction, and its Prometheus gauges.
Called by ``analyser.run_analysis`` once per release and fleet report.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlmodel import Session

from ..config.drift import DriftSettings
from ..services import alerts
from . import metrics, realized
from .wording import driver_text


def reconcile(
    session: Session,
    settings: DriftSettings,
    release_id: str,
    report_id: int | None,
    stats: dict[str, Any],
    drifted: list[str],
) -> list[alerts.AlertChange]:
    """Keep the release's drift alert (M of its devices drifted) and accuracy alert in step
    with its fleet report ``report_id``; the changes, for the webhook after the commit."""
    m = settings.alert_min_devices
    holds = len(drifted) >= m
    drift_msg = (
        f"drift on {len(drifted)} device(s) of release {release_id} "
        f"(K={settings.alert_drifted_windows} of N={settings.alert_windows} windows, M={m}): "
        f"{', '.join(drifted[:10])}; {driver_text(stats['verdict'])}"
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
            detail={"devices": drifted, "features": stats["drifted_features"],
                    "verdict": stats["verdict"]},
            drift_report_id=report_id,
        )
    ]
    if stats["moved_on"]:
        changes.append(
            alerts.reconcile_alert(
                session,
                "accuracy",
                release_id,
                firing=False,
                severity="warning",
                message=f"every device moved on from release {release_id}: no accuracy to "
                "estimate",
                detail={"moved_on": True},
                drift_report_id=report_id,
            )
        )
    else:
        changes.append(_reconcile_accuracy(session, settings, release_id, report_id, stats))
    return [c for c in changes if c is not None]


def _reconcile_accuracy(
    session: Session,
    settings: DriftSettings,
    release_id: str,
    report_id: int | None,
    stats: dict[str, Any],
) -> alerts.AlertChange | None:
    """The accuracy alert from the label-free estimate and, with ``accuracy_from_labels``,
    from realized accuracy: a camera × condition whose whole confidence interval lies more
    than ``max_accuracy_drop`` below the held-out accuracy."""
    est, drop = stats["estimated_accuracy"], stats["accuracy_drop"]
    labels = (realized.accuracy_report(session, release_id, settings.max_accuracy_drop,
                                       settings.min_labels, settings.accuracy_confidence)
              if settings.accuracy_from_labels else None)
    measured = bool(labels and labels["dropped"])
    if est is None and not measured:
        return None  # too few frames and no measured drop: leave the alert as it is
    low = bool(stats["accuracy_dropped"]) or measured
    parts = []
    if est is not None:
        parts.append(f"estimated accuracy of release {release_id} is {est:.3f}, "
                     f"{drop:.3f} below the reference {stats['reference_accuracy']:.3f}")
    if labels is not None and labels["dropped"]:
        worst = min(labels["dropped"], key=lambda r: r["ci_high"])
        parts.append(
            f"realized accuracy on {worst['device_id']}/{worst['camera_id']} "
            f"({worst['condition']}) is {worst['accuracy']:.3f} "
            f"[{worst['ci_low']:.3f}, {worst['ci_high']:.3f}] from {worst['labelled']} labels, "
            f"below the held-out {labels['held_out_accuracy']:.3f} - "
            f"{settings.max_accuracy_drop:.3f}")
    msg = "; ".join(parts) or f"no accuracy drop on release {release_id}"
    return alerts.reconcile_alert(
        session,
        "accuracy",
        release_id,
        firing=low,
        severity="warning",
        message=msg if low else f"accuracy recovered: {msg}",
        detail={"estimated_accuracy": est, "drop": drop,
                "realized": None if labels is None else labels["dropped"]},
        drift_report_id=report_id,
    )


def export_metrics(release_id: str, stats: dict[str, Any], drifted: int) -> None:
    """The fleet report as gauges: drifted devices, estimated accuracy, PSI per feature."""
    metrics.DRIFTED_DEVICES.labels(release_id).set(drifted)
    if stats["estimated_accuracy"] is not None:
        metrics.ESTIMATED_ACCURACY.labels(release_id).set(stats["estimated_accuracy"])
    elif stats["moved_on"]:
        # A frozen gauge would keep stating an estimate nobody runs any more.
        with contextlib.suppress(KeyError):
            metrics.ESTIMATED_ACCURACY.remove(release_id)
    for feature, f in [*stats["features"].items(), ("classes", stats["classes"])]:
        if f.get("judged"):
            metrics.FLEET_PSI.labels(release_id, feature).set(f["psi"])
            metrics.FLEET_PSI_ALARM.labels(release_id, feature).set(f["psi_alarm"])
