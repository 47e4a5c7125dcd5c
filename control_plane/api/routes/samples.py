"""``/api/v1/samples``: frames agents upload for labelling; list, label, reject, and
confirm the candidate negatives agents mined."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ...errors import PermissionDeniedError
from ...schemas import ErrorBody, Page
from ...services import samples
from ...services.auth import Principal
from ..deps import BigIntId, OperateDep, PageDep, ReadDep, SessionDep, StateDep, require
from ..ratelimit import retry_after_header

router = APIRouter(prefix="/samples", tags=["samples"])
DeviceDep = Annotated[Principal, Depends(require("device"))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a sample (device token)",
    responses={
        413: {"model": ErrorBody, "description": "The body is over one image's size."},
        429: {"model": ErrorBody, "description": "This device token is over its upload rate; "
              "Retry-After says when to try again."},
    },
)
def upload_sample(
    body: samples.SampleCreate, session: SessionDep, state: StateDep, principal: DeviceDep
) -> samples.SamplePublic:
    if principal.device_id is None:
        raise PermissionDeniedError(
            f"token {principal.name!r} belongs to no device: samples come from devices"
        )
    buckets = state.sample_buckets
    wait = buckets.take(str(principal.token_id or principal.name))
    if wait is not None:
        seconds = retry_after_header(wait)
        raise HTTPException(
            status_code=429,
            detail=f"device {principal.device_id} is over its {buckets.per_hour} sample "
            f"uploads per hour (sample_uploads_per_hour): retry in {seconds} s",
            headers={"Retry-After": seconds},
        )
    row = samples.create_sample(session, state.store, principal.device_id, body)
    return samples.sample_public(row)


@router.get("", summary="List samples, newest first")
def list_samples(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    status: samples.SampleStatus | None = None,
    device: Annotated[str | None, Query(max_length=63)] = None,
    release: Annotated[str | None, Query(max_length=64)] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    negative: Annotated[bool | None, Query(
        description="true: only candidate negatives agents mined; false: none of them")] = None,
) -> Page[samples.SamplePublic]:
    flt = samples.SampleFilter(
        status=status,
        device_id=device,
        release_id=release,
        label=label,
        max_confidence=max_confidence,
        negative=negative,
    )
    rows, total = samples.list_samples(session, flt, limit=page.limit, offset=page.offset)
    items = [samples.sample_public(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{sample_id}", summary="Get one sample (its JPEG: GET /artifacts/{image_sha256})")
def get_sample(sample_id: BigIntId, session: SessionDep, _p: ReadDep) -> samples.SamplePublic:
    return samples.sample_public(samples.get_sample(session, sample_id))


@router.patch("/{sample_id}", summary="Label or reject a sample (audited)")
def update_sample(
    sample_id: BigIntId, body: samples.SampleUpdate, session: SessionDep, principal: OperateDep
) -> samples.SamplePublic:
    row = samples.update_sample(session, sample_id, body, who=principal.name)
    return samples.sample_public(row)


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1024)


@router.post(
    "/{sample_id}/confirm",
    summary="Confirm a candidate negative: label it 'other' (audited)",
    responses={409: {"model": ErrorBody, "description": "Not a candidate negative, or "
                     "already in a dataset version."}},
)
def confirm_negative(
    sample_id: BigIntId, session: SessionDep, principal: OperateDep,
    body: ConfirmBody | None = None,
) -> samples.SamplePublic:
    row = samples.confirm_negative(session, sample_id, who=principal.name,
                                   note=body.note if body else None)
    return samples.sample_public(row)
