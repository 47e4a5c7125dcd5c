"""Active learning: frames agents upload for labelling, and their review.

An agent (``device`` scope) uploads a JPEG with the model's predictions; the
JPEG goes to the content store (served by ``GET /api/v1/artifacts/{sha256}``)
and a ``Sample`` row keeps its provenance (device, camera, release, model
version, confidence). Operators label or reject samples (audited); labelled
samples are what the next dataset version picks up (``datasets.build_with_samples``),
after which they are frozen: changing a sample already in a dataset is refused.

A sample with a ``candidate`` is a negative an agent mined from its camera's own
background and distractors (``protocols.NegativeSource``): the agent thinks it shows no
animal. Confirming it labels it with the background label (``other``), so the next
dataset version trains the "other" class on what this camera really sees; an operator
who sees an animal relabels it instead.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func
from sqlmodel import Session, col, select

from protocols import NegativeSource

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas.common import RecentUtcDatetime
from ..store.artifacts import ArtifactStore
from ..store.models import Sample, utc_now
from . import audit
from .devices import get_device

MAX_IMAGE_BYTES = 2 * 1024 * 1024
SampleStatus = Literal["new", "labelled", "rejected"]
Label = Annotated[str, Field(min_length=1, max_length=64)]
NEGATIVE_LABEL = "other"  # the trainer's background class (trainer.crops.OTHER)


class SampleCreate(BaseModel):
    """What an agent uploads: one JPEG and what the model said about it."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    release_id: str | None = Field(None, max_length=64)
    model_version: str | None = Field(None, max_length=128)
    predicted_label: Label
    confidence: float = Field(ge=0, le=1)
    predictions: dict[Label, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, max_length=256
    )
    captured_at: RecentUtcDatetime
    image_jpeg_b64: str = Field(max_length=(MAX_IMAGE_BYTES * 4) // 3 + 4)
    candidate: NegativeSource | None = Field(
        None, description="Set when the agent mined this crop as a candidate negative "
        "(no animal): where it came from. Absent for a low-confidence sample.")


class SampleUpdate(BaseModel):
    """Label a sample, or reject it (not usable for training)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["labelled", "rejected"]
    label: Label | None = None
    note: str | None = Field(None, max_length=1024)

    @model_validator(mode="after")
    def _label_when_labelled(self) -> SampleUpdate:
        if self.status == "labelled" and self.label is None:
            raise ValueError("status 'labelled' needs a label")
        if self.status == "rejected" and self.label is not None:
            raise ValueError("a rejected sample takes no label")
        return self


class SamplePublic(BaseModel):
    id: int
    device_id: str
    camera_id: str
    release_id: str | None
    model_version: str | None
    predicted_label: str
    confidence: float
    predictions: dict[str, float]
    image_sha256: str
    image_size: int
    captured_at: datetime
    status: str
    label: str | None
    note: str | None
    candidate: str | None = Field(
        None, description="Where the agent mined this candidate negative (null: a "
        "low-confidence sample).")
    dataset_version: str | None = Field(
        None, description="The dataset version this labelled sample went into (null: none yet)."
    )
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


@dataclass(frozen=True)
class SampleFilter:
    status: SampleStatus | None = None
    device_id: str | None = None
    release_id: str | None = None
    label: str | None = None
    max_confidence: float | None = None
    negative: bool | None = None  # True: candidate negatives only; False: none of them


def decode_jpeg(b64: str, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """A JPEG sent as base64 by a device; InvalidRequestError naming what is wrong."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("image_jpeg_b64 is not valid base64") from None
    if len(data) > max_bytes:
        raise InvalidRequestError(f"the image is over {max_bytes} bytes")
    if not data.startswith(b"\xff\xd8\xff"):
        raise InvalidRequestError("image_jpeg_b64 does not hold a JPEG (no SOI marker)")
    return data


def create_sample(
    session: Session, store: ArtifactStore, device_id: str, body: SampleCreate
) -> Sample:
    """Store the JPEG and record the sample for ``device_id`` (from the caller's token)."""
    get_device(session, device_id)
    data = decode_jpeg(body.image_jpeg_b64)
    sha256, size = store.put([data])
    row = Sample(
        device_id=device_id,
        camera_id=body.camera_id,
        release_id=body.release_id,
        model_version=body.model_version,
        predicted_label=body.predicted_label,
        confidence=body.confidence,
        predictions=dict(body.predictions),
        image_sha256=sha256,
        image_size=size,
        captured_at=body.captured_at,
        candidate=body.candidate,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_sample(session: Session, sample_id: int) -> Sample:
    row = session.get(Sample, sample_id)
    if row is None:
        raise NotFoundError(f"no sample {sample_id}: see `parkwatch samples list`")
    return row


def list_samples(
    session: Session, flt: SampleFilter, *, limit: int, offset: int
) -> tuple[list[Sample], int]:
    """Samples newest first."""
    where = [
        getattr(Sample, name) == value
        for name, value in (
            ("status", flt.status),
            ("device_id", flt.device_id),
            ("release_id", flt.release_id),
            ("label", flt.label),
        )
        if value is not None
    ]
    if flt.max_confidence is not None:
        where.append(col(Sample.confidence) <= flt.max_confidence)
    if flt.negative is not None:
        where.append(col(Sample.candidate).is_not(None) if flt.negative
                     else col(Sample.candidate).is_(None))
    total = session.exec(select(func.count()).select_from(Sample).where(*where)).one()
    rows = session.exec(
        select(Sample)
        .where(*where)
        .order_by(col(Sample.created_at).desc(), col(Sample.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def update_sample(session: Session, sample_id: int, body: SampleUpdate, *, who: str) -> Sample:
    """Label or reject a sample (audited); a labelled sample may be relabelled."""
    row = get_sample(session, sample_id)
    if row.dataset_version is not None:
        raise ConflictError(
            f"sample {sample_id} is in dataset version {row.dataset_version} already; "
            "datasets are immutable, so it cannot change"
        )
    if row.status == "rejected" and body.status == "rejected":
        raise ConflictError(f"sample {sample_id} is rejected already")
    before = (row.status, row.label)
    row.status, row.label, row.note = body.status, body.label, body.note
    row.updated_at, row.updated_by = utc_now(), who
    session.add(row)
    audit.record(
        session,
        who,
        f"sample.{body.status}",
        f"sample:{sample_id}",
        from_status=before[0],
        from_label=before[1],
        label=body.label,
        note=body.note,
    )
    session.commit()
    session.refresh(row)
    return row


def confirm_negative(session: Session, sample_id: int, *, who: str,
                     note: str | None = None) -> Sample:
    """An operator agrees the agent's candidate negative shows no animal: it is labelled
    with the background label (audited as any labelling)."""
    row = get_sample(session, sample_id)
    if row.candidate is None:
        raise ConflictError(
            f"sample {sample_id} is no candidate negative: label it with "
            "`parkwatch samples label` instead"
        )
    return update_sample(
        session, sample_id,
        SampleUpdate(status="labelled", label=NEGATIVE_LABEL, note=note), who=who,
    )


def sample_public(row: Sample) -> SamplePublic:
    return SamplePublic.model_validate(row, from_attributes=True)
