"""Realized accuracy from labelled samples, per release × device × camera × condition,
with a Wilson confidence interval (``scipy.stats.binomtest``).

A sample's condition is the one its camera reported in the telemetry window that
covers the sample's capture time (both on the agent's clock, so they agree with each
other); a sample no window covers counts under ``any``.

Samples are uploaded by active learning, which picks low-confidence frames, so the
realized accuracy of those samples is biased low against all frames: compare it across
cameras, conditions and releases (same selection), and with the held-out accuracy
knowing that (docs/drift.md). Each row also carries what the model's own confidence
expected of those same samples (``expected``), the like-for-like partner of the realized
figure: the label-free estimate of a report covers every crop, the easy "no animal" ones
included, and so cannot be compared with labels of animals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats
from sqlmodel import Session, col, select

from ..store.models import ModelVersion, Release, Sample, TelemetryWindowRecord
from .baseline import ANY_CONDITION


class Realized(BaseModel):
    """One camera x condition's labelled truth; the API answers it as it is."""

    model_config = ConfigDict(frozen=True)

    release_id: str
    device_id: str
    camera_id: str
    condition: str
    labelled: int
    correct: int
    accuracy: float = Field(description="Realized: correct / labelled.")
    expected: float = Field(description="The mean top-class confidence of the same labelled "
                            "samples: what a calibrated model expected of them. Realized "
                            "below it means the model is sure of its mistakes.")
    ci_low: float
    ci_high: float


def wilson(correct: int, labelled: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    ci = stats.binomtest(correct, labelled).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _condition(session: Session, sample: Sample) -> str:
    t = TelemetryWindowRecord
    text = session.execute(
        sa.select(sa.cast(col(t.payload), sa.Text))
        .where(col(t.device_id) == sample.device_id,
               col(t.window_start) <= sample.captured_at,
               col(t.window_end) >= sample.captured_at)
        .order_by(col(t.seq).desc())
        .limit(1)
    ).scalar()
    if text is None:
        return ANY_CONDITION
    for camera in json.loads(text).get("cameras") or []:
        if camera.get("camera_id") == sample.camera_id:
            return str(camera.get("condition") or ANY_CONDITION)
    return ANY_CONDITION


def realized_accuracy(
    session: Session,
    *,
    release_id: str | None = None,
    device_id: str | None = None,
    confidence: float = 0.95,
) -> list[Realized]:
    """Every (release, device, camera, condition) with labelled samples, sorted."""
    query = select(Sample).where(col(Sample.status) == "labelled",
                                 col(Sample.release_id).is_not(None))
    if release_id is not None:
        query = query.where(col(Sample.release_id) == release_id)
    if device_id is not None:
        query = query.where(col(Sample.device_id) == device_id)
    tally: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for sample in session.exec(query):
        key = (str(sample.release_id), sample.device_id, sample.camera_id,
               _condition(session, sample))
        tally[key][0] += 1
        tally[key][1] += int(sample.label == sample.predicted_label)
        tally[key][2] += sample.confidence
    out = []
    for (rel, dev, cam, cond), (n, k, sure) in sorted(tally.items()):
        low, high = wilson(int(k), int(n), confidence)
        out.append(Realized(release_id=rel, device_id=dev, camera_id=cam, condition=cond,
                            labelled=int(n), correct=int(k), accuracy=k / n,
                            expected=sure / n, ci_low=low, ci_high=high))
    return out


# Held-out accuracy as the trainer registers it, the most like a labelled sample first: a
# regions model's samples are crops, scored at training on clips of held-out photos; a
# whole-frame model's are frames, scored on test photos.
HELD_OUT_METRICS = ("regions_clip_accuracy", "test_accuracy", "accuracy")


def reference_accuracy(metrics: dict[str, Any]) -> float | None:
    """The held-out accuracy among a model version's registered ``metrics`` (None: none)."""
    for name in HELD_OUT_METRICS:
        value = metrics.get(name)
        if isinstance(value, int | float):
            return float(value)
    return None


def held_out_accuracy(session: Session, release_id: str) -> float | None:
    """The accuracy the release's model version scored on its held-out set at training."""
    spec = session.exec(
        select(ModelVersion.spec)
        .join(Release, col(Release.model_version_id) == col(ModelVersion.id))
        .where(Release.release_id == release_id)
    ).first()
    return reference_accuracy((spec or {}).get("metrics") or {})


def accuracy_report(
    session: Session, release_id: str, max_drop: float, min_labels: int, confidence: float
) -> dict[str, Any]:
    """A release's realized accuracy per camera × condition, and those whose whole interval
    lies more than ``max_drop`` below the held-out accuracy (``dropped``)."""
    reference = held_out_accuracy(session, release_id)
    rows = [r.model_dump() for r in realized_accuracy(session, release_id=release_id,
                                                 confidence=confidence)]
    dropped = [r for r in rows
               if reference is not None and r["labelled"] >= min_labels
               and r["ci_high"] < reference - max_drop]
    return {"held_out_accuracy": reference, "confidence": confidence, "min_labels": min_labels,
            "cameras": rows, "dropped": dropped}


__all__ = ["Realized", "accuracy_report", "held_out_accuracy", "realized_accuracy",
           "reference_accuracy", "wilson"]
