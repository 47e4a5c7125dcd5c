"""The agent: wires capture, inference, releases, telemetry and MQTT together.

Threads: one per camera (capture), one inference loop, the release worker
(:mod:`.release_worker`: desired state, shadow candidates, rollbacks),
paho's network thread, the outbox drain, the sample uploader and the
/healthz + /metrics server.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from protocols import CameraStatus, ReportedState, TelemetryWindow
from protocols.logs import set_static_context

from . import __version__
from .capture import CameraSource
from .config import AgentSettings
from .events import EventLog
from .metrics import AgentMetrics
from .mqtt import MqttLink
from .outbox import Outbox
from .pipeline import DetectionPolicy, InferenceLoop
from .release_worker import ReleaseWorker
from .releases import ReleaseStore
from .samples import SampleUploader
from .snapshots import SnapshotTaker


class Agent:
    """The edge agent daemon. ``start()``, then ``stop()`` (from a signal handler's thread)."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = s = settings
        set_static_context(device_id=s.device_id)
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(s.data_dir / "outbox.sqlite3", s.outbox_max_rows, s.outbox_max_bytes,
                             resend_seconds=s.outbox_resend_seconds)
        self.events = EventLog(s.device_id, self.outbox, previous_protocol=s.previous_protocol)
        self.store = ReleaseStore(
            s.data_dir, s.control_plane_url, s.api_token.get_secret_value(), s.trusted_keys(),
            timeout=s.http_timeout_seconds,
            on_event=lambda kind, rid, detail: self.events.emit(
                kind, release_id=rid, detail=detail),  # type: ignore[arg-type]
        )
        wake = threading.Event()
        self.cameras = [CameraSource(c, on_state=self._camera_changed, wake=wake)
                        for c in s.cameras]
        self.samples = SampleUploader(
            s.control_plane_url, s.api_token.get_secret_value(),
            confidence_below=s.sample_confidence_below, max_per_hour=s.sample_max_per_hour,
            jpeg_quality=s.sample_jpeg_quality, timeout=s.http_timeout_seconds,
            enabled=s.upload_samples, negatives_per_hour=s.negative_max_per_hour,
        )
        self.snapshots = SnapshotTaker(
            s.control_plane_url, s.api_token.get_secret_value(),
            [c.camera_id for c in s.cameras], timeout=s.http_timeout_seconds,
        )
        self.loop = InferenceLoop(
            s.device_id, self.cameras, self.outbox, self.events, s.window_seconds,
            DetectionPolicy(s.detection_persist_frames, s.detection_min_confidence,
                            frozenset(s.detection_ignore_labels)),
            wake, on_window=self._window_closed,
            on_failure=lambda runtime, detail: self.releases.runtime_failed(runtime, detail),
            failures_before_rollback=s.rollback_after_errors, samples=self.samples,
            snapshots=self.snapshots,
            previous_protocol=s.previous_protocol,
        )
        self.metrics = AgentMetrics(s.device_id) if s.metrics_port else None
        if self.metrics is not None:
            self.metrics.watch_regions(self.loop.region_counts)
        self.releases = ReleaseWorker(s, self.store, self.loop, self.events, self.samples,
                                      self.metrics, publish=self._publish_reported)
        self.link = MqttLink(s.device_id, s.mqtt, self.outbox, self.releases.desired_received,
                             __version__, keepalive=s.mqtt_keepalive_seconds,
                             sessions=not s.previous_protocol, trusted_keys=s.trusted_keys(),
                             on_refused=self.releases.desired_refused,
                             on_command=self.snapshots.request)
        self._report_lock = threading.Lock()
        self._samples_counted = 0

    def start(self) -> None:
        self.releases.boot()
        for camera in self.cameras:
            camera.start()
        self.loop.start()
        self.samples.start()
        self.snapshots.start()
        self.releases.start()
        if self.metrics is not None and self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port, self.settings.metrics_host,
                               self.health)
        self.link.start()
        self._publish_reported()

    def stop(self) -> None:
        """Stop capture, close the window, flush the outbox for a while, say offline."""
        self.releases.stop()
        for camera in self.cameras:
            camera.stop()
        self.loop.stop()
        self.samples.stop()
        self.snapshots.stop()
        self.link.stop(self.settings.shutdown_flush_seconds)
        self.releases.join(timeout=5)
        if self.metrics is not None:
            self.metrics.close()
        self.outbox.close()

    # -- reported state ----------------------------------------------------------------------
    def reported_state(self) -> ReportedState:
        return self.releases.reported_state([
            CameraStatus(camera_id=c.camera_id, state=c.state, since=c.since,
                         detail=(c.detail or None) and c.detail[:1024])
            for c in self.cameras])

    def _publish_reported(self) -> None:
        with self._report_lock:  # build and send in one step: a stale state never goes last
            self.link.publish_reported(self.reported_state())

    def _camera_changed(self, camera: CameraSource) -> None:
        self.events.emit("camera_state", camera_id=camera.camera_id,
                         detail=f"{camera.state}: {camera.detail or ''}".strip(": "))
        self._publish_reported()

    def _window_closed(self, window: TelemetryWindow) -> None:
        if self.metrics is not None:
            self.metrics.observe(window)
            self.metrics.samples.inc(self.samples.uploaded - self._samples_counted)
            self._samples_counted = self.samples.uploaded
        self.releases.window_closed(window)

    # -- /healthz ----------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when the inference loop turns, a model serves and no camera is stuck."""
        state = self.reported_state()
        loop_age = time.monotonic() - self.loop.last_pass
        problems = []
        if loop_age > 5.0:
            problems.append(f"inference loop has not turned for {loop_age:.0f}s")
        if state.active is None:
            problems.append("no model is active")
        stuck = [c.camera_id for c in state.cameras if c.state == "reconnecting"]
        if stuck:
            problems.append(f"cameras reconnecting: {', '.join(stuck)}")
        return not problems, {
            "device_id": state.device_id,
            "agent_version": state.agent_version,
            "problems": problems,
            "broker_connected": self.link.connected,
            "outbox_rows": self.outbox.count(),
            "active": state.active.model_dump(mode="json") if state.active else None,
            "shadow": state.shadow.model_dump(mode="json") if state.shadow else None,
            "cameras": {c.camera_id: c.state for c in state.cameras},
        }
