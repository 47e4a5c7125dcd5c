"""``/api/v1/drift/accuracy``: realized accuracy from labelled samples per camera ×
condition, with its confidence interval, beside the label-free estimate of the latest
drift report (``drift/realized.py``; label samples with ``/api/v1/samples``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...drift import realized
from ...services import alerts
from ..deps import ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/drift/accuracy", tags=["drift"])


class CameraAccuracy(realized.Realized):
    estimated_accuracy: float | None = Field(
        None, description="Label-free estimate of the same camera × condition in the latest "
        "device report (None: none there).")


class AccuracyReport(BaseModel):
    release_id: str
    held_out_accuracy: float | None = Field(
        description="What the model version scored at training on held-out data like the "
        "labelled samples: crops of composed clips for a regions model, else test photos.")
    confidence: float
    min_labels: int
    max_accuracy_drop: float
    cameras: list[CameraAccuracy]
    dropped: list[CameraAccuracy] = Field(
        description="Cameras × conditions whose whole interval lies more than "
        "max_accuracy_drop below the held-out accuracy (they raise the accuracy alert).")


def _estimates(session: Any, release_id: str, devices: set[str]) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for device_id in devices:
        rows, _ = alerts.list_drift_reports(session, device_id=device_id, release_id=release_id,
                                            drifted=None, limit=1, offset=0)
        for cam in (rows[0].statistics.get("baseline") or {}).get("cameras", []) if rows else []:
            out[(device_id, cam["camera_id"], cam["condition"])] = cam.get("estimated_accuracy")
    return out


@router.get("", summary="Realized accuracy per camera × condition, beside the estimate")
def get_accuracy(
    session: SessionDep,
    state: StateDep,
    _p: ReadDep,
    release: Annotated[str, Query(max_length=64)],
) -> AccuracyReport:
    s = state.settings.drift
    report = realized.accuracy_report(session, release, s.max_accuracy_drop, s.min_labels,
                                      s.accuracy_confidence)
    est = _estimates(session, release, {r["device_id"] for r in report["cameras"]})

    def row(r: dict[str, Any]) -> CameraAccuracy:
        key = (r["device_id"], r["camera_id"], r["condition"])
        return CameraAccuracy(**r, estimated_accuracy=est.get(key))

    return AccuracyReport(
        release_id=release, held_out_accuracy=report["held_out_accuracy"],
        confidence=report["confidence"], min_labels=report["min_labels"],
        max_accuracy_drop=s.max_accuracy_drop,
        cameras=[row(r) for r in report["cameras"]], dropped=[row(r) for r in report["dropped"]])
