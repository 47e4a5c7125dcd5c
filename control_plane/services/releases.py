"""Releases: a model version turned into a signed ``ReleaseManifest``."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets

from sqlalchemy import func
from sqlmodel import Session, col, select

from protocols import ModelVersionCreate, ReleaseManifest, SignedManifest, sign_manifest
from protocols.logs import bind_context
from protocols.manifest import BASE_AGENT_VERSION, needed_agent_version

from ..config import ReleaseGateSettings
from ..errors import InvalidRequestError, NotFoundError
from ..schemas import ReleasePublic
from ..store.artifacts import ArtifactStore
from ..store.keys import Keyring
from ..store.models import ModelVersion, Release
from . import audit, registry, release_gate

log = logging.getLogger(__name__)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_release_id(model_name: str, version: str) -> str:
    """E.g. ``petnet-v3-1a2b``: readable, unique, within the wire format's 64 chars."""
    suffix = f"-v{version}-{secrets.token_hex(2)}"
    stem = _ID_UNSAFE.sub("-", model_name)[: 64 - len(suffix)]
    return f"{stem}{suffix}"


def build_manifest(release_id: str, model_name: str, row: ModelVersion) -> ReleaseManifest:
    """The manifest of one version: primary artifact plus a fallback of the other precision."""
    spec = ModelVersionCreate.model_validate(row.spec)
    primary = next(a for a in spec.artifacts if a.sha256 == spec.primary_sha256)
    fallback = next(
        (
            a
            for a in spec.artifacts
            if a.sha256 != primary.sha256 and a.precision != primary.precision
        ),
        None,
    )
    return ReleaseManifest(
        release_id=release_id,
        model_name=model_name,
        model_version=row.version,
        labels=spec.labels,
        input=spec.input,
        outputs=spec.outputs,
        artifact=primary,
        fallback_artifact=fallback,
        primary_reason=spec.primary_reason,
        reference_profile=spec.reference_profile,
        golden_inputs=spec.golden_inputs,
        background_labels=spec.background_labels,
        animal_min_confidence=spec.animal_min_confidence,
        crops=spec.crops,
        min_agent_version=needed_agent_version(spec.crops),
    )


CHAMPION = "champion"


def pick_version(session: Session, model_name: str, version: str | None) -> ModelVersion:
    """``version`` (a number or an alias); unset: the ``champion`` alias, or the latest
    version of a model that has no champion yet."""
    if version is not None:
        return registry.get_version(session, model_name, version)
    try:
        return registry.get_version(session, model_name, CHAMPION)
    except NotFoundError:
        return registry.get_version(session, model_name, None)


def _check_stored(store: ArtifactStore, manifest: ReleaseManifest) -> None:
    """Refuse to sign a manifest whose artifacts the store does not hold now: agents
    would be sent a release they cannot download (a store switched or restored since the
    version was registered, a replica configured with another store)."""
    for art in (manifest.artifact, manifest.fallback_artifact):
        if art is not None and not store.exists(art.sha256):
            raise InvalidRequestError(
                f"artifact {art.sha256} of {manifest.model_name} version "
                f"{manifest.model_version} is not in this control plane's artifact store: "
                "upload it again (POST /api/v1/artifacts) or check artifact_store and "
                "s3_bucket / artifact_dir, then release")


def create_release(
    session: Session, keyring: Keyring, model_name: str, version: str | None, *, who: str,
    store: ArtifactStore, gate: ReleaseGateSettings | None = None,
    override_reason: str | None = None,
) -> Release:
    """Sign the manifest of ``model_name`` at ``version`` (see ``pick_version``) and store
    it, once ``store`` holds its artifacts. With a ``gate``, a version whose evaluation
    falls short is refused unless ``override_reason`` is given; the override and its
    reason go to the audit log."""
    row = pick_version(session, model_name, version)
    overridden = (release_gate.check(row, model_name, gate, override_reason)
                  if gate is not None else [])
    release_id = new_release_id(model_name, row.version)
    with bind_context(release_id=release_id):
        manifest = build_manifest(release_id, model_name, row)
        _check_stored(store, manifest)
        key_id, key = keyring.signing_key()
        signed = sign_manifest(manifest, key)
        release = Release(
            release_id=release_id,
            model_version_id=row.id or 0,
            model_name=model_name,
            model_version=row.version,
            key_id=key_id,
            primary_sha256=manifest.artifact.sha256,
            manifest=signed.model_dump(mode="json", by_alias=True),
            created_by=who,
            created_at=manifest.created_at,
        )
        session.add(release)
        audit.record(
            session,
            who,
            "release.create",
            f"release:{release_id}",
            model=model_name,
            version=row.version,
            key_id=key_id,
        )
        if overridden:
            audit.record(session, who, "release.gate_override", f"release:{release_id}",
                         model=model_name, version=row.version, failures=overridden,
                         reason=override_reason)
        session.commit()
        log.info("release signed", extra={"model": model_name, "version": row.version})
    return release


def min_agent_version(row: Release) -> str:
    """The oldest agent that reads ``row``'s manifest (a row without one: any agent)."""
    payload = (row.manifest or {}).get("payload")
    if not payload:
        return BASE_AGENT_VERSION
    fields = json.loads(base64.b64decode(payload))
    return str(fields.get("min_agent_version", BASE_AGENT_VERSION))


def get_release(session: Session, release_id: str) -> Release:
    row = session.get(Release, release_id)
    if row is None:
        raise NotFoundError(f"no release {release_id!r}: see `parkwatch releases list`")
    return row


def signed_manifest(session: Session, release_id: str) -> SignedManifest:
    return SignedManifest.model_validate(get_release(session, release_id).manifest)


def list_releases(
    session: Session, *, limit: int, offset: int, model_name: str | None = None
) -> tuple[list[Release], int]:
    query = select(Release)
    count = select(func.count()).select_from(Release)
    if model_name is not None:
        query = query.where(Release.model_name == model_name)
        count = count.where(Release.model_name == model_name)
    rows = session.exec(
        query.order_by(col(Release.created_at).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), session.exec(count).one()


def release_public(row: Release) -> ReleasePublic:
    return ReleasePublic(
        release_id=row.release_id,
        model_name=row.model_name,
        model_version=row.model_version,
        key_id=row.key_id,
        primary_sha256=row.primary_sha256,
        created_at=row.created_at,
    )
