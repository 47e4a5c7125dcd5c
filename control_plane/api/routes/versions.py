"""``/api/v1/versions``: search model versions across the registry."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query

from ...errors import InvalidRequestError
from ...schemas import ModelVersionPublic, Page
from ...schemas.common import UtcDatetime
from ...services import versions
from ..deps import PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/versions", tags=["models"])
_METRIC = re.compile(r"^([A-Za-z0-9_.-]{1,64}):(-?[0-9]+(?:\.[0-9]+)?(?:[eE]-?[0-9]+)?)$")


def parse_min_metrics(values: list[str]) -> dict[str, float]:
    """``accuracy:0.9`` -> {"accuracy": 0.9}; 422 naming the bad item otherwise."""
    found: dict[str, float] = {}
    for item in values:
        match = _METRIC.fullmatch(item)
        if match is None:
            raise InvalidRequestError(
                f"min_metric {item[:80]!r} must look like name:number, e.g. accuracy:0.9"
            )
        found[match[1]] = float(match[2])
    return found


@router.get("", summary="Search versions by model, alias, metrics, date and dataset")
def search_versions(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    model: Annotated[str | None, Query(max_length=64)] = None,
    alias: Annotated[str | None, Query(max_length=64)] = None,
    min_accuracy: Annotated[
        float | None, Query(allow_inf_nan=False, description="Shorthand for accuracy:X.")
    ] = None,
    min_metric: Annotated[
        list[str],
        Query(max_length=16, description="name:number, e.g. macro_f1:0.8; repeatable.",
              # Documented here, checked by parse_min_metrics with a message naming the fix.
              json_schema_extra={"items": {"type": "string", "pattern": _METRIC.pattern}}),
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    created_after: UtcDatetime | None = None,
    created_before: UtcDatetime | None = None,
    dataset_version: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[ModelVersionPublic]:
    metrics = parse_min_metrics(min_metric)
    if min_accuracy is not None:
        metrics["accuracy"] = min_accuracy
    flt = versions.VersionFilter(
        model=model,
        alias=alias,
        min_metrics=metrics,
        created_after=created_after,
        created_before=created_before,
        dataset_version=dataset_version,
    )
    items, total = versions.search_versions(session, flt, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
