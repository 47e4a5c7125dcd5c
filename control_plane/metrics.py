"""Prometheus metrics of the control plane (one definition per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MQTT_MESSAGES = Counter(
    "parkwatch_cp_mqtt_messages_total",
    "MQTT messages handled by the control plane, by topic kind and outcome.",
    ["kind", "outcome"],
)
MQTT_CONNECTED = Gauge(
    "parkwatch_cp_mqtt_connected",
    "1 while the control plane's broker connection is up, by lane: the connection's service "
    "name (mqtt: telemetry, or every kind on one connection; mqtt-control: statuses, "
    "reported states and events).",
    ["lane"],
)
MQTT_RECONNECTS = Counter(
    "parkwatch_cp_mqtt_connects_total", "Successful (re)connections to the broker."
)
DESIRED_PUBLISHED = Counter(
    "parkwatch_cp_desired_published_total", "Desired states handed to the broker."
)
HTTP_REQUESTS = Counter(
    "parkwatch_cp_http_requests_total",
    "HTTP requests, by route and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "parkwatch_cp_http_request_seconds", "HTTP request latency, by route.", ["method", "route"]
)
INGEST_RECEIVED = Counter(
    "parkwatch_cp_ingest_received_total",
    "Telemetry windows and events received over MQTT (before validation), by kind.",
    ["kind"],
)
INGEST_RESULTS = Counter(
    "parkwatch_cp_ingest_total",
    ("Telemetry windows and events by outcome: stored, duplicate, invalid, unknown_device, "
     "dead_letter (failed, kept to replay), error (failed and lost)."),
    ["kind", "outcome"],
)
ROLLOUTS = Gauge("parkwatch_cp_rollouts", "Rollouts in the store, by state.", ["state"])
ROLLOUT_DEVICES = Gauge(
    "parkwatch_cp_rollout_devices", "Devices of rollouts in the store, by state.", ["state"]
)
DEVICES = Gauge("parkwatch_cp_devices", "Provisioned devices.")
DEVICES_ONLINE = Gauge("parkwatch_cp_devices_online", "Devices whose last status is online.")
ALERTS_OPEN = Gauge(
    "parkwatch_cp_alerts_open", "Alerts not yet resolved, by severity.", ["severity"]
)
INGEST_QUEUE_DEPTH = Gauge(
    "parkwatch_cp_ingest_queue_depth",
    "MQTT messages received and not yet written and acknowledged: at most ingest_max_queued; "
    "there ingest stops reading and the broker holds further messages (back-pressure).",
)
INGEST_BATCH_WINDOWS = Histogram(
    "parkwatch_cp_ingest_batch_windows",
    "Telemetry windows written per store transaction by the MQTT ingest writer.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
INGEST_WRITE_SECONDS = Histogram(
    "parkwatch_cp_ingest_write_seconds",
    "Time to write one batch of telemetry windows (or one other message), retries included.",
)
INGEST_STORE_RETRIES = Counter(
    "parkwatch_cp_ingest_store_retries_total",
    "Ingest writes retried after a transient store error (SQLite busy, PostgreSQL down, "
    "deadlock or serialisation failure); nothing is acknowledged until the write succeeds.",
)
INGEST_STORE_DOWN = Gauge(
    "parkwatch_cp_ingest_store_down",
    "Ingest writers waiting for the store to come back (0 when the store is writable).",
)
