"""Builders for tests and demos: valid registrations and wire messages with little input.

Imports nothing heavy; production code never uses this module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from protocols import (
    ArtifactRef,
    CameraWindow,
    GoldenInput,
    Histogram,
    InputSpec,
    Lineage,
    ModelVersionCreate,
    OutputSpec,
    Percentiles,
    ReferenceProfile,
    ReleaseStatus,
    ReportedState,
    ShadowSummary,
    TelemetryWindow,
)
from protocols.manifest import INPUT_STAT_NAMES

LABELS = ["cat", "dog", "empty"]


def _hist(lo: float, hi: float, bins: int = 4) -> Histogram:
    step = (hi - lo) / bins
    return Histogram(edges=[lo + i * step for i in range(bins + 1)], counts=[1.0] * bins)


def reference_profile(embedding_dim: int = 4, axes: int = 2) -> ReferenceProfile:
    return ReferenceProfile(
        sample_count=300,
        class_counts={label: 100.0 for label in LABELS},
        confidence=_hist(0.0, 1.0),
        input_stats={name: _hist(0.0, 255.0) for name in INPUT_STAT_NAMES},
        embedding_mean=[0.0] * embedding_dim,
        embedding_axes=[
            [1.0 if j == i else 0.0 for j in range(embedding_dim)] for i in range(axes)
        ],
        embedding_hists=[_hist(-3.0, 3.0) for _ in range(axes)],
    )


def registration(
    model_name: str, artifacts: list[tuple[str, int, str]], **overrides: Any
) -> ModelVersionCreate:
    """A valid ``ModelVersionCreate``; ``artifacts``: (sha256, size, precision), primary first."""
    refs = [
        ArtifactRef(sha256=sha, size_bytes=size, precision=prec)  # type: ignore[arg-type]
        for sha, size, prec in artifacts
    ]
    fields: dict[str, Any] = {
        "model_name": model_name,
        "labels": LABELS,
        "input": InputSpec(width=32, height=32),
        "outputs": OutputSpec(embedding_dim=4),
        "artifacts": refs,
        "primary_sha256": refs[0].sha256,
        "primary_reason": "int8 within 0.5 pt of fp32 accuracy",
        "metrics": {"accuracy": 0.93, "macro_f1": 0.91},
        "lineage": Lineage(dataset_version="ds-1", code_version="abc123"),
        "reference_profile": reference_profile(),
        "golden_inputs": [
            GoldenInput(name="g0", image_png_b64="iVBORw0KGgo=", expected_logits=[0.1, 0.2, 0.3])
        ],
    }
    fields.update(overrides)
    return ModelVersionCreate(**fields)


def telemetry_window(
    device_id: str,
    seq: int,
    release_id: str | None = None,
    *,
    class_counts: dict[str, int] | None = None,
    errors: int = 0,
    p95_ms: float = 10.0,
    shadow: ShadowSummary | None = None,
) -> TelemetryWindow:
    """A window; with ``class_counts``, one camera that inferred that many frames."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq)
    cameras = []
    if class_counts is not None:
        latency = Percentiles(p50=p95_ms / 2, p95=p95_ms, p99=p95_ms * 1.2)
        cameras.append(CameraWindow(
            camera_id="cam0", state="up", frames_inferred=sum(class_counts.values()),
            errors=errors, class_counts=class_counts, inference_ms=latency,
        ))
    return TelemetryWindow(
        device_id=device_id,
        seq=seq,
        release_id=release_id,
        window_start=start,
        window_end=start + timedelta(minutes=1),
        cameras=cameras,
        shadow=shadow,
    )


def reported_state(
    device_id: str, release_id: str | None, stage: str = "healthy", revision: int | None = None
) -> ReportedState:
    active = None
    if release_id is not None:
        active = ReleaseStatus(
            release_id=release_id,
            model_version="1",
            stage=stage,  # type: ignore[arg-type]
            since=datetime.now(UTC),
        )
    return ReportedState(
        device_id=device_id, agent_version="0.1.0", desired_revision=revision, active=active
    )


def register_profiled_release(session: Any, release_id: str, profile: ReferenceProfile,
                              created_by: str = "test") -> None:
    """A model, a version carrying ``profile`` and a release of it, straight into the store
    (``session``: a sqlmodel Session): what drift analysis and rollups bin windows on."""
    from .store.models import Model, ModelVersion, Release  # the store only where needed

    model = Model(name=f"m-{release_id}")
    session.add(model)
    session.flush()
    version = ModelVersion(model_id=model.id or 0, number=1, version="1",
                           primary_sha256="0" * 64, created_by=created_by,
                           spec={"reference_profile": profile.model_dump(mode="json")})
    session.add(version)
    session.flush()
    session.add(Release(release_id=release_id, model_version_id=version.id or 0,
                        model_name=model.name, model_version="1", key_id="0" * 16,
                        primary_sha256="0" * 64, manifest={}, created_by=created_by))
