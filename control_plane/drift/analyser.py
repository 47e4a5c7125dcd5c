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
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from ..services import alerts
from ..store.models import DriftBaseline, utc_now
from . import hour_history, hours, learning, metrics, release_alerts
from .collect import (
    Collected,
    DeviceWindows,
    collect,
    read_recent,
    reference_profile,
    report_start,
    slice_ids,
)
from .compare import accuracy, compare
from .fleet import camera_rows, compare_many, windows_drifted
from .fleet_verdicts import baseline_holds_many
from .summary import Summary
from .verdicts import verdict

log = logging.getLogger(__name__)
# Active production baselines of one release: by device, then (camera, condition).
Baselines = dict[str, dict[tuple[str, str], DriftBaseline]]


@dataclass(frozen=True)
class Hours:
    """What the hour check needs: the analysis's hour of the day (UTC) and the light
    history of the cameras it checks, by (device, camera)."""

    hour: int
    histories: dict[tuple[str, str], hours.History]


@dataclass
class AnalysisResult:
    """What one analysis wrote: fleet report id per release, device reports, alert changes."""

    fleet_reports: dict[str, int] = field(default_factory=dict)
    device_reports: int = 0
    drifted_devices: dict[str, list[str]] = field(default_factory=dict)
    changes: list[alerts.AlertChange] = field(default_factory=list)
    skipped_releases: list[str] = field(default_factory=list)
    failed_releases: dict[str, str] = field(default_factory=dict)
    baselines_learned: int = 0


@dataclass
class Report:
    """One drift report as the analysis writes it (device_id None: the fleet's)."""

    release_id: str
    device_id: str | None
    window_start: datetime
    window_end: datetime
    window_count: int
    sample_count: int
    drifted: bool
    statistics: dict[str, Any]


def _device_holds(verdicts: list[bool | None], settings: DriftSettings) -> dict[str, Any]:
    """A device's K-of-N skew rule from its latest windows' verdicts."""
    drifted = sum(1 for v in verdicts if v)
    return {
        "windows": len(verdicts),
        "judged": sum(1 for v in verdicts if v is not None),
        "drifted": drifted,
        "holds": drifted >= settings.alert_drifted_windows,
        "k": settings.alert_drifted_windows,
        "n": settings.alert_windows,
    }


# Devices whose statistics are computed together: large enough that numpy's per-call
# cost vanishes, small enough that the matrices (rows of every camera window) stay tens
# of MB at any fleet size.
CHUNK_DEVICES = 1000


def _chunk_statistics(
    profile: ReferenceProfile, chunk: list[tuple[str, DeviceWindows]], settings: DriftSettings,
    baselines: Baselines,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each device of a chunk with its statistics against the training profile (its
    latest windows' K-of-N in ``recent``) and its baseline verdicts, computed in array
    operations for the whole chunk: one call per device and window was nearly all of a
    fleet report's time."""
    skew = compare_many(profile, [dev.summary for _, dev in chunk], settings)
    latest = [w for _, dev in chunk for w in dev.recent]
    cameras = camera_rows(profile, latest, [r for _, dev in chunk for r in dev.binned()])
    judged = [len(dev.recent) - i <= settings.alert_windows
              for _, dev in chunk for i in range(len(dev.recent))]
    verdicts = iter(windows_drifted(profile, latest, settings, cameras, judged))
    held = baseline_holds_many(profile, [list(dev.recent) for _, dev in chunk],
                               [baselines.get(d, {}) for d, _ in chunk], settings, cameras,
                               [k for _, dev in chunk for ks in dev.camera_keys() for k in ks])
    for (_, dev), stats, base in zip(chunk, skew, held, strict=True):
        # The latest N of them: older ones are read for the class mix only.
        mine = [next(verdicts) for _ in dev.recent][-settings.alert_windows:]
        stats["recent"] = _device_holds(mine, settings)
        yield stats, base


Chunk = list[tuple[str, DeviceWindows]]  # devices of one release, in id order


class ChunkReader(Protocol):
    """What an analysis over the store reads for each chunk of a release's devices before
    judging it (their latest windows, baselines and light histories), and drops after:
    a fleet's latest windows at once were most of a 10,000-device report's memory."""

    def read(self, release_id: str, chunk: Chunk) -> tuple[Baselines, Hours | None]: ...

    def drop(self, chunk: Chunk) -> None: ...


def release_reports(
    release_id: str,
    profile: ReferenceProfile,
    per_device: dict[str, DeviceWindows],
    settings: DriftSettings,
    moved_on: Collection[str] = (),
    baselines: Baselines | None = None,
    hour: Hours | None = None,
    reader: ChunkReader | None = None,
) -> tuple[list[Report], Report]:
    """A release's device reports (by device id) and fleet report, from merged windows.

    A device is drifted when a camera × condition holds against its production baseline
    (``baselines``: by device, then (camera, condition)); its difference from the training
    profile (skew: ``features``, ``recent``) counts only with ``alert_on_skew``.
    A device in ``moved_on`` sends windows of a newer release now: its report stays, but
    it no longer counts towards this release's alert (its old windows say nothing about
    how this release does today), so a rollout away from a drifting release resolves it.
    Devices are judged ``CHUNK_DEVICES`` at a time; with a ``reader``, each chunk's
    latest windows, baselines and hour histories come from it instead of the arguments.
    """
    fleet = _FleetReport(release_id, profile, settings, moved_on, len(per_device))
    ordered = sorted(per_device.items())
    devices: list[Report] = []
    for at in range(0, len(ordered), CHUNK_DEVICES):
        chunk = ordered[at : at + CHUNK_DEVICES]
        mine, mine_hour = (baselines or {}, hour) if reader is None else reader.read(
            release_id, chunk)
        for (device_id, dev), (stats, base) in zip(
                chunk, _chunk_statistics(profile, chunk, settings, mine), strict=True):
            stats["recent"]["moved_on"] = device_id in moved_on
            if mine_hour is not None:
                hour_history.apply(device_id, base, mine_hour.histories, mine_hour.hour,
                                   settings)
            stats["baseline"] = base
            holds = stats["baseline"]["holds"] or (
                settings.alert_on_skew and stats["recent"]["holds"])
            stats["verdict"] = verdict(stats, holds)
            devices.append(fleet.add(Report(release_id, device_id, dev.start, dev.end,
                                            dev.summary.windows, dev.summary.frames, holds,
                                            stats), dev))
        if reader is not None:
            reader.drop(chunk)
    return devices, fleet.report()


class _FleetReport:
    """A release's fleet report, added up from its device reports in device order."""

    def __init__(self, release_id: str, profile: ReferenceProfile, settings: DriftSettings,
                 moved_on: Collection[str], devices: int) -> None:
        self.release_id, self.profile, self.settings = release_id, profile, settings
        self.moved_on, self.devices = moved_on, devices
        self.fleet, self.running = Summary.empty(profile), Summary.empty(profile)
        self.drifted: list[str] = []
        # The headline's candidates: the first device of the highest ratio, of those
        # counted and of all (``_fleet_verdict``).
        self.top_counted: Report | None = None
        self.top_any: Report | None = None
        self.start: datetime | None = None
        self.end: datetime | None = None

    def add(self, r: Report, dev: DeviceWindows) -> Report:
        counted = r.device_id not in self.moved_on
        if r.drifted and counted:
            self.drifted.append(r.device_id or "")
            if self.top_counted is None or _ratio(r.statistics["verdict"]) > _ratio(
                    self.top_counted.statistics["verdict"]):
                self.top_counted = r
        if self.top_any is None or _ratio(r.statistics["verdict"]) > _ratio(
                self.top_any.statistics["verdict"]):
            self.top_any = r
        self.fleet.merge(dev.summary)
        if counted:
            self.running.merge(dev.summary)
        self.start = dev.start if self.start is None else min(self.start, dev.start)
        self.end = dev.end if self.end is None else max(self.end, dev.end)
        return r

    def report(self) -> Report:
        settings = self.settings
        stats = compare(self.profile, self.fleet, settings)
        # The accuracy alert, like the drift alert, is about the devices that still run
        # the release: when every device moved on, there is nothing left to estimate.
        stats |= accuracy(self.profile, self.running, settings)
        stats["moved_on"] = len(self.moved_on) == self.devices
        stats["devices"] = self.devices
        stats["drifted_devices"] = self.drifted
        stats["min_devices"] = settings.alert_min_devices
        stats["verdict"] = self._verdict()
        if self.start is None or self.end is None:
            raise ValueError(f"release {self.release_id} has no devices to report")
        return Report(self.release_id, None, self.start, self.end, self.fleet.windows,
                      self.fleet.frames, len(self.drifted) >= settings.alert_min_devices,
                      stats)

    def _verdict(self) -> dict[str, Any]:
        """The fleet's headline: the driver of its most drifted device (of one counted,
        else of any), so the fleet page names a feature that can raise the alert."""
        drifted = len(self.drifted) >= self.settings.alert_min_devices
        top = self.top_counted or self.top_any
        out: dict[str, Any] = {"drifted": drifted, "device_id": None}
        if top is not None:
            out |= {**top.statistics["verdict"], "drifted": drifted,
                    "device_id": top.device_id}
        return out


def _ratio(v: dict[str, Any]) -> float:
    level = v.get("level")
    return float(v["statistic"]) / level if level else 0.0


def _newest_release(devices: dict[str, dict[str, DeviceWindows]]) -> dict[str, str]:
    """Each device's release of its newest window in the range (of those analysed)."""
    newest: dict[str, tuple[datetime, str]] = {}
    for rel, per_device in devices.items():
        for device_id, dev in per_device.items():
            if device_id not in newest or dev.end > newest[device_id][0]:
                newest[device_id] = (dev.end, rel)
    return {device_id: rel for device_id, (_, rel) in newest.items()}


def analysis_reports(
    found: Collected,
    settings: DriftSettings,
    failed: dict[str, str] | None = None,
    baselines: dict[tuple[str, str], dict[tuple[str, str], DriftBaseline]] | None = None,
    hour: Hours | None = None,
    reader: ChunkReader | None = None,
) -> list[tuple[str, list[Report], Report]]:
    """Per release (sorted): its device reports and its fleet report (pure with no
    ``reader``; what ``run_analysis`` writes, and what ``oracle.reports`` recomputes the
    slow way).

    A release whose analysis raises (a degenerate reference profile, say) is left out and
    named in ``failed`` with the reason: one bad release never stops the others.
    """
    newest_release = _newest_release(found.devices)
    out = []
    for rel, per_device in sorted(found.devices.items()):
        moved_on = {d for d in per_device if newest_release[d] != rel}
        try:
            mine = {d: (baselines or {}).get((rel, d), {}) for d in per_device}
            device_reports, fleet = release_reports(rel, found.profiles[rel], per_device,
                                                    settings, moved_on, mine, hour, reader)
        except Exception as exc:  # whatever it is, the other releases go on
            log.exception("drift analysis of a release failed", extra={"release_id": rel})
            if failed is None:
                raise
            failed[rel] = f"{type(exc).__name__}: {exc}"
            continue
        out.append((rel, device_reports, fleet))
    return out


class _StoreReader:
    """``ChunkReader`` over the store: a chunk's latest windows (``collect.read_recent``),
    its active baselines, those it lacks learned (``learning.learn_missing``), and the
    light histories of its cameras still learning (``hour_history``)."""

    def __init__(self, session: Session, found: Collected, settings: DriftSettings,
                 span: tuple[datetime, datetime, str | None]) -> None:
        self.session, self.found, self.settings, self.span = session, found, settings, span
        self.learned = 0
        self.first: dict[str, dict[str, list[int]]] = {}  # per release: ``slice_ids``

    def read(self, release_id: str, chunk: Chunk) -> tuple[Baselines, Hours | None]:
        start, end, only = self.span
        n = self.settings.latest_windows()
        if release_id not in self.first:
            self.first = {release_id: slice_ids(self.session, start, end, release_id, n)}
        # The merged rule judges the cameras' whole JSON (``baseline.judge_recent``).
        read_recent(self.session, {(release_id, d): dev for d, dev in chunk}, start, end, only,
                    n, self.first[release_id], stored=self.settings.alert_rule != "merged")
        ids = [d for d, _ in chunk]
        have = learning.active(self.session, [release_id], ids)
        part = Collected(profiles={release_id: self.found.profiles[release_id]},
                         devices={release_id: dict(chunk)})
        self.learned += learning.learn_missing(self.session, part, have, self.settings)
        checked = hour_history.learning_cameras(part, have)
        hour = Hours(end.hour, hour_history.load(self.session, checked, end, self.settings))
        return {d: have.get((release_id, d), {}) for d in ids}, hour

    def drop(self, chunk: Chunk) -> None:
        for _, dev in chunk:
            dev.recent.clear()
            dev.recent_rows, dev.recent_keys = [], []


def _values(r: Report) -> dict[str, Any]:
    return {"device_id": r.device_id, "release_id": r.release_id,
            "window_start": r.window_start, "window_end": r.window_end,
            "window_count": r.window_count, "sample_count": r.sample_count,
            "drifted": r.drifted, "statistics": r.statistics}


def _record(session: Session, r: Report) -> int:
    return alerts.record_drift_report(session, **_values(r)).id or 0


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
    start = report_start(end, range_minutes or settings.range_minutes)
    found = collect(session, start, end, release_id, settings.latest_windows(), recent=False)
    result = AnalysisResult(skipped_releases=found.unknown)
    reader = _StoreReader(session, found, settings, (start, end, release_id))
    for rel, device_reports, fleet in analysis_reports(found, settings, result.failed_releases,
                                                       reader=reader):
        alerts.record_drift_reports(session, [_values(r) for r in device_reports])
        result.device_reports += len(device_reports)
        stats, drifted = fleet.statistics, fleet.statistics["drifted_devices"]
        report_id = _record(session, fleet)
        result.fleet_reports[rel] = report_id
        result.drifted_devices[rel] = drifted
        result.changes.extend(
            release_alerts.reconcile(session, settings, rel, report_id, stats, drifted))
        release_alerts.export_metrics(rel, stats, len(drifted))
    result.baselines_learned = reader.learned
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


__all__ = [
    "AnalysisResult",
    "Report",
    "analysis_reports",
    "reference_profile",
    "release_reports",
    "run_analysis",
]
