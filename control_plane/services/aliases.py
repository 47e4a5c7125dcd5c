"""Model aliases (``champion``, ``challenger``, any name): set, move, remove; all audited.

The audit entry of a move names who moved it and from which version to which, so
``GET /api/v1/audit?action=alias.set&target=model:petnet`` is the alias's history.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from ..errors import InvalidRequestError, NotFoundError
from ..schemas import AliasPublic
from ..store.models import Model, ModelAlias, ModelVersion, utc_now
from . import audit, registry

ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
_ALIAS_RE = re.compile(ALIAS_PATTERN)


def check_alias(alias: str) -> str:
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidRequestError(
            f"alias {alias[:80]!r} is not valid: use 1-64 of a-z, 0-9, '-', '_', "
            "starting with a letter (e.g. champion)"
        )
    if alias.isdigit():  # pragma: no cover - the pattern already needs a leading letter
        raise InvalidRequestError("an alias cannot be a number: numbers are versions")
    return alias


def _model(session: Session, model_name: str) -> Model:
    model = session.exec(select(Model).where(Model.name == model_name)).first()
    if model is None:
        raise NotFoundError(f"no model {model_name!r}: see `parkwatch models list`")
    return model


def _row(session: Session, model: Model, alias: str) -> ModelAlias | None:
    return session.exec(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    ).first()


def _public(model_name: str, row: ModelAlias, version: str) -> AliasPublic:
    return AliasPublic(
        model_name=model_name,
        alias=row.alias,
        version=version,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def set_alias(
    session: Session, model_name: str, alias: str, version: str, *, who: str
) -> AliasPublic:
    """Point ``alias`` at ``version`` (creating or moving it); audited with from/to."""
    check_alias(alias)
    target = registry.get_version(session, model_name, version)
    model = _model(session, model_name)
    row = _row(session, model, alias)
    before: str | None = None
    if row is None:
        row = ModelAlias(
            model_id=model.id or 0, alias=alias, model_version_id=target.id or 0, updated_by=who
        )
    else:
        previous = session.get(ModelVersion, row.model_version_id)
        before = previous.version if previous is not None else None
        row.model_version_id, row.updated_by, row.updated_at = target.id or 0, who, utc_now()
    session.add(row)
    audit.record(
        session,
        who,
        "alias.set",
        f"model:{model_name}/alias:{alias}",
        from_version=before,
        to_version=target.version,
    )
    session.commit()
    return _public(model_name, row, target.version)


def remove_alias(session: Session, model_name: str, alias: str, *, who: str) -> None:
    model = _model(session, model_name)
    row = _row(session, model, alias)
    if row is None:
        raise NotFoundError(
            f"model {model_name!r} has no alias {alias[:64]!r}: "
            f"see `parkwatch aliases list {model_name}`"
        )
    previous = session.get(ModelVersion, row.model_version_id)
    session.delete(row)
    audit.record(
        session,
        who,
        "alias.remove",
        f"model:{model_name}/alias:{alias}",
        from_version=previous.version if previous is not None else None,
        to_version=None,
    )
    session.commit()


def get_alias(session: Session, model_name: str, alias: str) -> AliasPublic:
    model = _model(session, model_name)
    row = _row(session, model, alias)
    if row is None:
        raise NotFoundError(
            f"model {model_name!r} has no alias {alias[:64]!r}: "
            f"set it with `parkwatch aliases set {model_name} {alias[:64]} VERSION`"
        )
    version = session.get(ModelVersion, row.model_version_id)
    return _public(model_name, row, version.version if version is not None else "?")


def list_aliases(
    session: Session, model_name: str, *, limit: int, offset: int
) -> tuple[list[AliasPublic], int]:
    model = _model(session, model_name)
    rows = session.exec(
        select(ModelAlias, ModelVersion.version)
        .join(ModelVersion, col(ModelVersion.id) == ModelAlias.model_version_id)
        .where(ModelAlias.model_id == model.id)
        .order_by(col(ModelAlias.alias))
    ).all()
    items = [_public(model_name, row, version) for row, version in rows]
    return items[offset : offset + limit], len(items)
