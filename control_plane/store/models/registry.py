"""The registry's tables: models, versions, artifacts, aliases, dataset versions, releases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ._types import UTCDateTime, _json, utc_now


class Model(SQLModel, table=True):
    __tablename__ = "model"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_model_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    # The highest version number ever given, so a deleted version's number is never reused.
    last_number: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ModelVersion(SQLModel, table=True):
    """One registered version; ``spec`` is the ``ModelVersionCreate`` as sent."""

    __tablename__ = "model_version"
    __table_args__ = (sa.UniqueConstraint("model_id", "number", name="uq_model_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    number: int
    version: str = Field(max_length=32)
    primary_sha256: str = Field(max_length=64)
    spec: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Artifact(SQLModel, table=True):
    __tablename__ = "artifact"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int = Field(sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Release(SQLModel, table=True):
    """A signed manifest for one model version; ``manifest`` is the ``SignedManifest`` JSON."""

    __tablename__ = "release"

    release_id: str = Field(primary_key=True, max_length=64)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    model_name: str = Field(max_length=64)
    model_version: str = Field(max_length=32)
    key_id: str = Field(max_length=16)
    primary_sha256: str = Field(max_length=64)
    manifest: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ModelAlias(SQLModel, table=True):
    """A movable name (``champion``, ``challenger``, ...) for one version of a model.

    Every set, move and removal is written to the audit log (who, from, to).
    """

    __tablename__ = "model_alias"
    __table_args__ = (sa.UniqueConstraint("model_id", "alias", name="uq_model_alias"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    alias: str = Field(max_length=64)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    updated_by: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DatasetVersion(SQLModel, table=True):
    """A validated, versioned dataset the trainer used (``Lineage.dataset_version`` names it)."""

    __tablename__ = "dataset_version"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_dataset_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    version: str = Field(max_length=64)
    manifest_sha256: str | None = Field(default=None, max_length=64)
    sample_count: int = Field(default=0, sa_type=sa.BigInteger)
    class_counts: dict[str, int] = _json()
    source: str | None = Field(default=None, max_length=1024)
    detail: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
