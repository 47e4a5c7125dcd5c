"""Searching model versions across the registry, and deleting unused ones.

Filters run in SQL on both backends: metric thresholds and the dataset version
are read from the stored registration JSON (``spec``) with portable JSON paths.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError
from ..schemas import ModelVersionPublic
from ..store.models import Device, Model, ModelAlias, ModelVersion, Release
from . import audit, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionFilter:
    model: str | None = None
    alias: str | None = None
    min_metrics: dict[str, float] = field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None
    dataset_version: str | None = None


def _spec() -> sa.Column[object]:
    column: sa.Column[object] = ModelVersion.__table__.c.spec  # type: ignore[attr-defined]
    return column


def _conditions(flt: VersionFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if flt.model is not None:
        where.append(col(Model.name) == flt.model)
    if flt.alias is not None:
        aliased = select(ModelAlias.model_version_id).where(ModelAlias.alias == flt.alias)
        where.append(col(ModelVersion.id).in_(aliased))
    for name, threshold in sorted(flt.min_metrics.items()):
        where.append(_spec()[("metrics", name)].as_float() >= threshold)  # type: ignore[index]
    if flt.created_after is not None:
        where.append(col(ModelVersion.created_at) >= flt.created_after)
    if flt.created_before is not None:
        where.append(col(ModelVersion.created_at) < flt.created_before)
    if flt.dataset_version is not None:
        dataset = _spec()[("lineage", "dataset_version")].as_string()  # type: ignore[index]
        where.append(dataset == flt.dataset_version)
    return where


def search_versions(
    session: Session, flt: VersionFilter, *, limit: int, offset: int
) -> tuple[list[ModelVersionPublic], int]:
    """Versions matching every filter, newest first."""
    where = _conditions(flt)
    base = select(ModelVersion, Model.name).join(Model, col(Model.id) == ModelVersion.model_id)
    count = (
        select(func.count())
        .select_from(ModelVersion)
        .join(Model, col(Model.id) == ModelVersion.model_id)
    )
    total = session.exec(count.where(*where)).one()
    rows = session.exec(
        base.where(*where)
        .order_by(col(ModelVersion.created_at).desc(), col(ModelVersion.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    aliases = registry.aliases_of(session, [r.id or 0 for r, _ in rows])
    items = [registry.version_public(name, r, aliases.get(r.id or 0)) for r, name in rows]
    return items, total


def list_versions(
    session: Session, model_name: str, *, limit: int, offset: int
) -> tuple[list[ModelVersionPublic], int]:
    """One model's versions, newest first (404 for an unknown model)."""
    registry.model_named(session, model_name)
    return search_versions(session, VersionFilter(model=model_name), limit=limit, offset=offset)


def reported_release_ids(reported: object) -> set[str]:
    """Releases a reported state names: active, shadow, and the previous one kept for rollback."""
    found: set[str] = set()
    if not isinstance(reported, dict):
        return found
    for slot in ("active", "shadow"):
        status = reported.get(slot)
        if isinstance(status, dict) and isinstance(status.get("release_id"), str):
            found.add(status["release_id"])
    if isinstance(reported.get("previous_release_id"), str):
        found.add(reported["previous_release_id"])
    return found


def _users(session: Session, row: ModelVersion) -> tuple[list[str], list[str], list[str]]:
    """(releases, devices, aliases) that still use a version."""
    release_ids = list(
        session.exec(select(Release.release_id).where(Release.model_version_id == row.id)).all()
    )
    aliases = list(
        session.exec(select(ModelAlias.alias).where(ModelAlias.model_version_id == row.id)).all()
    )
    devices: set[str] = set()
    if release_ids:
        wanted = set(release_ids)
        desired = session.exec(
            select(Device.device_id).where(col(Device.desired_release_id).in_(release_ids))
        ).all()
        devices.update(desired)
        for device_id, reported in session.exec(
            select(Device.device_id, Device.reported).where(col(Device.reported).is_not(None))
        ).all():
            if wanted & reported_release_ids(reported):
                devices.add(device_id)
    return sorted(release_ids), sorted(devices), sorted(aliases)


def delete_version(session: Session, model_name: str, version: str, *, who: str) -> None:
    """Delete a version no release, device or alias uses; 409 naming the users otherwise.

    Its artifacts stay in the content store (other versions may share them).
    """
    row = registry.get_version(session, model_name, version)
    if not version.isdigit():
        version = row.version
    release_ids, device_ids, aliases = _users(session, row)
    if release_ids or aliases:
        parts = []
        if release_ids:
            parts.append(f"release(s) {', '.join(release_ids[:20])}")
        if device_ids:
            parts.append(f"device(s) {', '.join(device_ids[:20])} (desired or reported)")
        if aliases:
            parts.append(f"alias(es) {', '.join(aliases)}")
        raise ConflictError(
            f"{model_name} version {version} is still used by {'; '.join(parts)}: "
            "move the aliases and roll the devices to another release first"
        )
    session.delete(row)
    audit.record(
        session,
        who,
        "model_version.delete",
        f"model:{model_name}/{version}",
        primary_sha256=row.primary_sha256,
    )
    session.commit()
    log.info("model version deleted", extra={"model": model_name, "version": version})
