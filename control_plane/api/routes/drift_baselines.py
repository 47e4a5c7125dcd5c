"""``/api/v1/drift/baselines``: per-camera production baselines (list, show, reset), and
those not learned yet with the reason (``/learning``).

The analysis learns them (``drift/learning.py``); an operator resets them here when a
camera changed on purpose (moved, new lens), and new ones are learned from later windows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...drift import baseline, learning, unlearned, wording
from ...schemas import Page
from ...services import audit
from ...store.models import DriftBaseline, DriftBaselineAttempt
from ..deps import BigIntId, OperateDep, PageDep, ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/drift/baselines", tags=["drift"])


class FeatureLevel(BaseModel):
    """A feature's fitted null: PSI / (1/n + 1/m) ~ scale * chi2(dof) (never below the
    independent-frames level of ``bins - 1`` degrees of freedom)."""

    scale: float
    dof: float
    bins: int


class BaselinePublic(BaseModel):
    """One baseline: which camera, condition and release, its version and state, how it
    was learned, and each feature's alarm-level parameters."""

    id: int
    device_id: str
    camera_id: str
    condition: str
    release_id: str
    version: int
    state: Literal["active", "retired"]
    window_count: int
    sample_count: int
    window_minutes: float
    false_alarm_days: float = Field(description="The target run length its levels are set for.")
    levels: dict[str, FeatureLevel]
    features: int = Field(description="Features it holds counts of.")
    unfitted: list[str] = Field(
        description="Features without a level (too few busy windows to fit one): not "
        "judged against this baseline.")
    unfitted_why: str | None = Field(
        None, description="Why those features have no level, and the fix (null: none).")
    superseded: bool = Field(
        False, description="Active, but its device runs another release now: it judges "
        "nothing until a rollback to its release.")
    counts: dict[str, list[float]] | None = Field(
        None, description="Merged counts per feature (only when one baseline is asked for).")
    learned_from: datetime
    learned_to: datetime
    created_at: datetime
    retired_at: datetime | None
    retired_by: str | None
    retired_reason: str | None


def baseline_public(row: DriftBaseline, false_alarm_days: float, counts: bool = False,
                    running: dict[str, str | None] | None = None) -> BaselinePublic:
    """``running``: the release each device reports active (a baseline of another one is
    superseded)."""
    data: dict[str, Any] = row.model_dump(exclude={"counts"})
    unfitted = learning.unfitted(row.counts, row.levels)
    return BaselinePublic(
        **data,
        state="active" if row.retired_at is None else "retired",
        false_alarm_days=false_alarm_days,
        features=len(row.counts),
        unfitted=unfitted,
        unfitted_why=wording.unfitted_text(
            unfitted, len(row.counts), (row.device_id, row.camera_id, row.condition),
            baseline.MIN_REPLAYS),
        counts=row.counts if counts else None,
        superseded=row.retired_at is None
        and (running or {}).get(row.device_id) not in (None, row.release_id),
    )


@router.get("", summary="List production baselines, newest first")
def list_baselines(
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    _p: ReadDep,
    device: Annotated[str | None, Query(max_length=63)] = None,
    release: Annotated[str | None, Query(max_length=64)] = None,
    condition: Annotated[str | None, Query(max_length=16)] = None,
    active: bool = False,
) -> Page[BaselinePublic]:
    rows, total = learning.list_baselines(
        session, device_id=device, release_id=release, condition=condition,
        active_only=active, limit=page.limit, offset=page.offset)
    days = state.settings.drift.false_alarm_days
    running = learning.running_releases(session, [r.device_id for r in rows])
    return Page(items=[baseline_public(r, days, running=running) for r in rows], total=total,
                limit=page.limit, offset=page.offset)


class BaselineReset(BaseModel):
    """Which active baselines to retire: a device (optionally one camera or condition), or
    every camera of a release."""

    model_config = ConfigDict(extra="forbid")

    device_id: str | None = Field(None, max_length=63)
    camera_id: str | None = Field(None, max_length=64)
    condition: str | None = Field(None, max_length=16)
    release_id: str | None = Field(None, max_length=64)
    reason: str = Field("operator reset", max_length=256)

    @model_validator(mode="after")
    def _scoped(self) -> BaselineReset:
        if self.device_id is None and self.release_id is None:
            raise ValueError(
                "name device_id or release_id: a reset of every baseline is not allowed")
        return self


class BaselineResetResult(BaseModel):
    retired: list[int]


@router.post("/reset", summary="Retire active baselines (new ones are learned; audited)")
def reset_baselines(
    body: BaselineReset, session: SessionDep, principal: OperateDep
) -> BaselineResetResult:
    rows = learning.reset(
        session, by=principal.name, reason=body.reason, device_id=body.device_id,
        camera_id=body.camera_id, condition=body.condition, release_id=body.release_id)
    ids = [r.id or 0 for r in rows]
    audit.record(session, principal.name, "drift.baseline.reset",
                 f"device:{body.device_id}" if body.device_id else f"release:{body.release_id}",
                 retired=ids, reason=body.reason)
    session.commit()
    return BaselineResetResult(retired=ids)


class BaselineLearning(BaseModel):
    """A camera × condition without a baseline under a release: the latest attempt to
    learn one, and why it made none."""

    device_id: str
    camera_id: str
    condition: str
    release_id: str
    reason: unlearned.Reason = Field(description=(
        "release_not_healthy: waits for the release to be healthy on the device; "
        "too_few_windows: fewer than baseline_windows windows of it yet; "
        "too_few_busy_windows: too few of them had min_samples crops; "
        "fit_failed: fitting raised (a defect; the other cameras are judged)."))
    message: str = Field(description="Why, and the fix, in one line.")
    windows: int = Field(description="Its windows counted at this attempt.")
    windows_needed: int = Field(description="Windows a baseline is learned from.")
    busy_windows: int | None = Field(
        description="Of them, those with min_samples crops (too_few_busy_windows only).")
    first_tried_at: datetime
    tried_at: datetime


@router.get("/learning", summary="Camera × conditions without a baseline yet, and why")
def learning_baselines(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    device: Annotated[str | None, Query(max_length=63)] = None,
    release: Annotated[str | None, Query(max_length=64)] = None,
    every_release: Annotated[bool, Query(
        description="Also those of releases their devices no longer report active.")] = False,
) -> Page[BaselineLearning]:
    rows, total = unlearned.listing(session, device_id=device, release_id=release,
                                    every_release=every_release, limit=page.limit,
                                    offset=page.offset)
    return Page(items=[_learning(r) for r in rows], total=total, limit=page.limit,
                offset=page.offset)


def _learning(row: DriftBaselineAttempt) -> BaselineLearning:
    return BaselineLearning.model_validate(row.model_dump())


@router.get("/{baseline_id}", summary="Get one baseline with its merged counts")
def get_baseline(
    baseline_id: BigIntId, session: SessionDep, state: StateDep, _p: ReadDep
) -> BaselinePublic:
    row = learning.get_baseline(session, baseline_id)
    return baseline_public(row, state.settings.drift.false_alarm_days, counts=True,
                           running=learning.running_releases(session, [row.device_id]))
