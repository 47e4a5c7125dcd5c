"""The store: SQLModel tables. API bodies live in ``schemas``; operations in
``services`` and ``rollouts``.

Every table is created by an explicit Alembic migration (``migrations/versions``);
a test checks that autogenerate finds no difference between the two.
Timestamps are timezone-aware UTC on every backend (``UTCDateTime``).
"""

from __future__ import annotations

from ._types import BigId, UTCDateTime, utc_now
from .fleet import ApiToken, AuditEntry, Device, DeviceGroup, StoreEpoch
from .loop import (
    Alert,
    DriftBaseline,
    DriftBaselineAttempt,
    DriftBaselinePool,
    DriftReport,
    TrainingJob,
)
from .registry import Artifact, DatasetVersion, Model, ModelAlias, ModelVersion, Release
from .rollouts import Rollout, RolloutDevice, RolloutWave
from .telemetry import (
    CameraSnapshot,
    DeadLetter,
    EventRecord,
    Sample,
    TelemetryRollup,
    TelemetryWatermark,
    TelemetryWindowRecord,
)

__all__ = [
    "Alert",
    "ApiToken",
    "Artifact",
    "AuditEntry",
    "BigId",
    "CameraSnapshot",
    "DatasetVersion",
    "DeadLetter",
    "Device",
    "DeviceGroup",
    "DriftBaseline",
    "DriftBaselineAttempt",
    "DriftBaselinePool",
    "DriftReport",
    "EventRecord",
    "Model",
    "ModelAlias",
    "ModelVersion",
    "Release",
    "Rollout",
    "RolloutDevice",
    "RolloutWave",
    "Sample",
    "StoreEpoch",
    "TelemetryRollup",
    "TelemetryWatermark",
    "TelemetryWindowRecord",
    "TrainingJob",
    "UTCDateTime",
    "utc_now",
]
