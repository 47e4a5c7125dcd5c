"""Local ``/healthz`` and Prometheus ``/metrics`` for the agent.

Counters are fed from closed telemetry windows; ``/healthz`` asks the agent at
request time (200 when healthy, 503 with the reasons otherwise).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from protocols import TelemetryWindow

from .regions.stats import RegionCounts

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]

log = logging.getLogger(__name__)


class AgentMetrics:
    """Gauges and counters per camera; started only when ``metrics_port`` is set."""

    def __init__(self, device_id: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        cam = ["camera_id"]
        self.frames = Counter("parkwatch_agent_frames", "Frames by outcome",
                              [*cam, "outcome"], registry=self.registry)
        self.errors = Counter("parkwatch_agent_inference_errors", "Inference errors", cam,
                              registry=self.registry)
        self.reconnects = Counter("parkwatch_agent_camera_reconnects", "Reconnects", cam,
                                  registry=self.registry)
        self.stalls = Counter("parkwatch_agent_camera_stalls", "Stalled reads", cam,
                              registry=self.registry)
        self.fps = Gauge("parkwatch_agent_fps", "Frames per second in the last window",
                         [*cam, "stage"], registry=self.registry)
        self.latency = Gauge("parkwatch_agent_latency_ms", "Latency percentiles, last window",
                             [*cam, "kind", "quantile"], registry=self.registry)
        self.up = Gauge("parkwatch_agent_camera_up", "1 when the camera delivers frames", cam,
                        registry=self.registry)
        self.cpu = Gauge("parkwatch_agent_cpu_percent", "Process CPU %", registry=self.registry)
        self.rss = Gauge("parkwatch_agent_rss_bytes", "Resident memory", registry=self.registry)
        self.seq = Gauge("parkwatch_agent_window_seq", "Last telemetry window seq",
                         registry=self.registry)
        self.dropped = Counter("parkwatch_agent_windows_dropped", "Windows dropped by the outbox",
                               registry=self.registry)
        self.shadow_agreement = Gauge("parkwatch_agent_shadow_agreement",
                                      "Share of frames where the shadow candidate agreed",
                                      ["release_id"], registry=self.registry)
        self.rollbacks = Counter("parkwatch_agent_rollbacks", "Automatic rollbacks",
                                 registry=self.registry)
        self.samples = Counter("parkwatch_agent_samples_uploaded", "Samples uploaded",
                               registry=self.registry)
        self.desired_refused = Counter(
            "parkwatch_agent_desired_refused",
            "Desired states refused (signature: not signed by a trusted key; invalid; "
            "stale: not newer than the last one handled; downgrade: an older release "
            "without a signed rollback)", ["reason"], registry=self.registry)
        self._server: ThreadingHTTPServer | None = None

    def watch_regions(self, counts: Callable[[], Mapping[str, RegionCounts]]) -> None:
        """Serve the regions-mode cameras' running counts, read from ``counts`` at each
        scrape: regions proposed, classified and rejected, live tracks and animals."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        class Regions:
            def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
                regions = CounterMetricFamily(
                    "parkwatch_agent_regions", "Regions by outcome: proposed by the "
                    "background model, classified (crops), rejected (no animal)",
                    labels=["camera_id", "outcome"])
                tracks = GaugeMetricFamily("parkwatch_agent_live_tracks", "Tracks alive now",
                                           labels=["camera_id", "kind"])
                for camera_id, c in counts().items():
                    for outcome, n in (("proposed", c.proposed), ("classified", c.classified),
                                       ("rejected", c.rejected)):
                        regions.add_metric([camera_id, outcome], n)
                    tracks.add_metric([camera_id, "all"], c.live_tracks)
                    tracks.add_metric([camera_id, "animal"], c.live_animals)
                yield regions
                yield tracks

        self.registry.register(Regions())

    def serve(self, port: int, host: str, health: HealthCheck) -> None:
        """Serve ``/metrics`` and ``/healthz`` on a daemon thread."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(registry)
                elif path == "/healthz":
                    ok, detail = health()
                    status, ctype = (200 if ok else 503), "application/json"
                    body = json.dumps({"status": "ok" if ok else "degraded", **detail},
                                      default=str).encode()
                else:
                    status, ctype, body = 404, "application/json", b'{"detail": "not found"}'
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="metrics-http",
                         daemon=True).start()
        log.info("serving /healthz and /metrics", extra={"host": host, "port": port})

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def observe(self, window: TelemetryWindow) -> None:
        self.cpu.set(window.cpu_percent)
        self.rss.set(window.rss_bytes)
        self.seq.set(window.seq)
        self.dropped.inc(window.dropped_windows)
        if window.shadow is not None and window.shadow.frames_compared:
            self.shadow_agreement.labels(window.shadow.release_id).set(
                window.shadow.agreements / window.shadow.frames_compared)
        for c in window.cameras:
            cid = c.camera_id
            for outcome, n in (("captured", c.frames_captured), ("inferred", c.frames_inferred),
                               ("skipped", c.frames_skipped), ("lost", c.frames_lost)):
                self.frames.labels(cid, outcome).inc(n)
            self.errors.labels(cid).inc(c.errors)
            self.reconnects.labels(cid).inc(c.reconnects)
            self.stalls.labels(cid).inc(c.stalls)
            self.fps.labels(cid, "capture").set(c.capture_fps)
            self.fps.labels(cid, "inference").set(c.inference_fps)
            self.up.labels(cid).set(1.0 if c.state == "up" else 0.0)
            for kind, pct in (("inference", c.inference_ms), ("e2e", c.e2e_ms),
                              ("frame_age", c.frame_age_ms)):
                if pct is not None:
                    for q, v in (("0.5", pct.p50), ("0.95", pct.p95), ("0.99", pct.p99)):
                        self.latency.labels(cid, kind, q).set(v)
