"""Bodies and answers of the HTTP API (docs/contracts.md), one module per resource family.

Tables are in ``store.models``; the wire messages agents send are in ``protocols``.
Import from here: every public name of the modules below is re-exported.
"""

from ..services.states import AlertState, JobStatus
from .access import KeyPublic, TokenCreate, TokenCreated, TokenPublic
from .common import (
    AuditEntryPublic,
    ErrorBody,
    Health,
    LabelKey,
    LabelValue,
    Name,
    Page,
    RequestBody,
    RolloutMode,
    Scope,
)
from .fleet import (
    CameraConfig,
    DeviceCreate,
    DeviceLabelsUpdate,
    DeviceProvisioned,
    DevicePublic,
    GroupCreate,
    GroupPublic,
    TelemetryWindowPublic,
)
from .loop import (
    AlertPublic,
    AlertUpdate,
    DriftReportPublic,
    JobCreate,
    JobPublic,
    JobTrigger,
    JobUpdate,
    Severity,
)
from .registry import (
    AliasPublic,
    AliasSet,
    ArtifactPublic,
    DatasetVersionCreate,
    DatasetVersionPublic,
    ModelPublic,
    ModelVersionPublic,
    ReleaseCreate,
    ReleasePublic,
)
from .rollouts import (
    GateResultPublic,
    RolloutAction,
    RolloutCreate,
    RolloutDevicePublic,
    RolloutPublic,
    RolloutWavePublic,
)

__all__ = [
    "AlertPublic",
    "AlertState",
    "AlertUpdate",
    "AliasPublic",
    "AliasSet",
    "ArtifactPublic",
    "AuditEntryPublic",
    "CameraConfig",
    "DatasetVersionCreate",
    "DatasetVersionPublic",
    "DeviceCreate",
    "DeviceLabelsUpdate",
    "DeviceProvisioned",
    "DevicePublic",
    "DriftReportPublic",
    "ErrorBody",
    "GateResultPublic",
    "GroupCreate",
    "GroupPublic",
    "Health",
    "JobCreate",
    "JobPublic",
    "JobStatus",
    "JobTrigger",
    "JobUpdate",
    "KeyPublic",
    "LabelKey",
    "LabelValue",
    "ModelPublic",
    "ModelVersionPublic",
    "Name",
    "Page",
    "ReleaseCreate",
    "ReleasePublic",
    "RequestBody",
    "RolloutAction",
    "RolloutCreate",
    "RolloutDevicePublic",
    "RolloutMode",
    "RolloutPublic",
    "RolloutWavePublic",
    "Scope",
    "Severity",
    "TelemetryWindowPublic",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
]
