"""The model registry: artifacts, models and their numbered versions."""

from __future__ import annotations

import logging

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from protocols import ModelVersionCreate

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas import ArtifactPublic, ModelPublic, ModelVersionPublic
from ..store.artifacts import ArtifactStore
from ..store.db import insert_ignore
from ..store.models import Artifact, Model, ModelAlias, ModelVersion, utc_now
from . import audit

log = logging.getLogger(__name__)
_VERSION_RETRIES = 5


def record_artifact(session: Session, sha256: str, size_bytes: int, *, who: str) -> bool:
    """Note a stored artifact in the database; True when it is new (uploads are idempotent)."""
    created = insert_ignore(
        session, Artifact, {"sha256": sha256, "size_bytes": size_bytes, "created_at": utc_now()}
    )
    if created:
        audit.record(session, who, "artifact.upload", f"artifact:{sha256}", size_bytes=size_bytes)
    session.commit()
    return created


def get_artifact(session: Session, store: ArtifactStore, sha256: str) -> Artifact:
    row = session.get(Artifact, sha256) if store.exists(sha256) else None
    if row is None:
        raise NotFoundError(f"no artifact {sha256[:80]}: upload it with POST /api/v1/artifacts")
    return row


def _check_artifacts(session: Session, store: ArtifactStore, spec: ModelVersionCreate) -> None:
    shas = {a.sha256 for a in spec.artifacts}
    if spec.primary_sha256 not in shas:
        raise InvalidRequestError(
            f"primary_sha256 {spec.primary_sha256} is not one of the version's artifacts"
        )
    wanted = [(a.sha256, a.size_bytes) for a in spec.artifacts]
    if spec.report_sha256 is not None:
        wanted.append((spec.report_sha256, -1))
    for sha, size in wanted:
        row = session.get(Artifact, sha)
        if row is None or not store.exists(sha):
            raise InvalidRequestError(
                f"artifact {sha} is not in the store: upload it first (POST /api/v1/artifacts)"
            )
        if size >= 0 and row.size_bytes != size:
            raise InvalidRequestError(
                f"artifact {sha} has {row.size_bytes} bytes, the registration says {size}"
            )


def _model(session: Session, name: str) -> Model:
    insert_ignore(session, Model, {"name": name, "created_at": utc_now()})
    model = session.exec(select(Model).where(Model.name == name)).one()
    return model


def register_version(
    session: Session, store: ArtifactStore, spec: ModelVersionCreate, *, who: str
) -> ModelVersion:
    """Register a trained model; its artifacts must already be uploaded.

    The version number is the model's next ("1", "2", ...); concurrent
    registrations race on a unique key and retry, so numbers never repeat.
    """
    _check_artifacts(session, store, spec)
    model = _model(session, spec.model_name)
    for _attempt in range(_VERSION_RETRIES):
        last = session.exec(
            select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model.id)
        ).one()
        session.refresh(model)
        number = max(last or 0, model.last_number) + 1
        row = ModelVersion(
            model_id=model.id or 0,
            number=number,
            version=str(number),
            primary_sha256=spec.primary_sha256,
            spec=spec.model_dump(mode="json"),
            created_by=who,
        )
        try:
            with session.begin_nested():
                session.add(row)
                model.last_number = number
                session.add(model)
        except IntegrityError:
            log.info("version number taken concurrently, retrying", extra={"model": model.name})
            continue
        audit.record(
            session,
            who,
            "model_version.register",
            f"model:{spec.model_name}/{row.version}",
            primary_sha256=spec.primary_sha256,
        )
        session.commit()
        return row
    raise ConflictError(f"could not assign a version to {spec.model_name}: too much contention")


def model_named(session: Session, model_name: str) -> Model:
    model = session.exec(select(Model).where(Model.name == model_name)).first()
    if model is None:
        raise NotFoundError(f"no model {model_name!r}: register a version first (parkwatch train)")
    return model


def get_version(session: Session, model_name: str, version: str | None) -> ModelVersion:
    """One version of a model by number or alias; ``None`` means the latest."""
    model = model_named(session, model_name)
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if version is None:
        query = query.order_by(col(ModelVersion.number).desc())
    elif version.isdigit():
        query = query.where(ModelVersion.version == version)
    else:  # an alias: champion, challenger, ...
        query = query.join(ModelAlias, col(ModelAlias.model_version_id) == ModelVersion.id).where(
            ModelAlias.alias == version
        )
    row = session.exec(query.limit(1)).first()
    if row is None:
        raise NotFoundError(
            f"model {model_name!r} has no version or alias {version!r}: "
            f"see `parkwatch models versions {model_name}`"
        )
    return row


def version_public(
    model_name: str, row: ModelVersion, aliases: list[str] | None = None
) -> ModelVersionPublic:
    spec = ModelVersionCreate.model_validate(row.spec)
    return ModelVersionPublic(
        model_name=model_name,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        labels=spec.labels,
        primary_sha256=spec.primary_sha256,
        primary_reason=spec.primary_reason,
        artifacts=[a.model_dump(mode="json") for a in spec.artifacts],
        metrics=spec.metrics,
        lineage=spec.lineage.model_dump(mode="json"),
        report_sha256=spec.report_sha256,
        aliases=aliases or [],
    )


def aliases_of(session: Session, version_ids: list[int]) -> dict[int, list[str]]:
    """Aliases by model version id, for the versions shown."""
    found: dict[int, list[str]] = {}
    if not version_ids:
        return found
    rows = session.exec(
        select(ModelAlias.model_version_id, ModelAlias.alias)
        .where(col(ModelAlias.model_version_id).in_(version_ids))
        .order_by(col(ModelAlias.alias))
    ).all()
    for version_id, alias in rows:
        found.setdefault(version_id, []).append(alias)
    return found


def describe(session: Session, model_name: str, row: ModelVersion) -> ModelVersionPublic:
    """One version as the API shows it, with its aliases."""
    return version_public(model_name, row, aliases_of(session, [row.id or 0]).get(row.id or 0))


def list_models(session: Session, *, limit: int, offset: int) -> tuple[list[ModelPublic], int]:
    total = session.exec(select(func.count()).select_from(Model)).one()
    stats = (
        select(
            ModelVersion.model_id,
            func.max(ModelVersion.number).label("latest"),
            func.count().label("n"),
        )
        .group_by(col(ModelVersion.model_id))
        .subquery()
    )
    rows = session.exec(
        select(Model, stats.c.latest, stats.c.n)
        .join(stats, stats.c.model_id == Model.id, isouter=True)
        .order_by(col(Model.name))
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        ModelPublic(
            name=m.name,
            latest_version=str(latest) if latest is not None else None,
            version_count=n or 0,
            created_at=m.created_at,
        )
        for m, latest, n in rows
    ]
    return items, total


def artifact_public(row: Artifact) -> ArtifactPublic:
    return ArtifactPublic(sha256=row.sha256, size_bytes=row.size_bytes)
