"""Dataset versions: what the trainer trained on, by name and version (lineage target).

``build_with_samples`` makes the next version for continuous training: the previous
version's folder (or the configured ImageFolder) plus every labelled sample not yet in
a dataset, written to a new folder; so each version holds all samples labelled so far.
Each sample records the version it went into; the version's ``detail`` records where
every sample came from (device, camera, release, who labelled it), and which were
held out for the champion/challenger comparison instead of trained on.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas import DatasetVersionCreate, DatasetVersionPublic
from ..store.artifacts import ArtifactStore
from ..store.models import DatasetVersion, Sample, utc_now
from . import audit


def register_dataset(session: Session, body: DatasetVersionCreate, *, who: str) -> DatasetVersion:
    if _find(session, body.name, body.version) is not None:
        raise ConflictError(
            f"dataset {body.name} version {body.version} is already registered: "
            "dataset versions are immutable, register a new version"
        )
    row = DatasetVersion(**body.model_dump(), created_by=who)
    session.add(row)
    audit.record(
        session,
        who,
        "dataset.register",
        f"dataset:{body.name}/{body.version}",
        sample_count=body.sample_count,
    )
    session.commit()
    return row


def _find(session: Session, name: str, version: str) -> DatasetVersion | None:
    return session.exec(
        select(DatasetVersion).where(DatasetVersion.name == name, DatasetVersion.version == version)
    ).first()


def get_dataset(session: Session, name: str, version: str) -> DatasetVersion:
    row = _find(session, name, version)
    if row is None:
        raise NotFoundError(
            f"no dataset {name[:64]!r} version {version[:64]!r}: see `parkwatch datasets list`"
        )
    return row


def list_datasets(
    session: Session, *, name: str | None, limit: int, offset: int
) -> tuple[list[DatasetVersion], int]:
    where = [col(DatasetVersion.name) == name] if name is not None else []
    total = session.exec(select(func.count()).select_from(DatasetVersion).where(*where)).one()
    rows = session.exec(
        select(DatasetVersion)
        .where(*where)
        .order_by(col(DatasetVersion.created_at).desc(), col(DatasetVersion.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def dataset_public(row: DatasetVersion) -> DatasetVersionPublic:
    return DatasetVersionPublic.model_validate(row, from_attributes=True)


def unused_labelled_samples(session: Session) -> list[Sample]:
    """Labelled samples that no dataset version holds yet, oldest first."""
    return list(
        session.exec(
            select(Sample)
            .where(col(Sample.status) == "labelled", col(Sample.dataset_version).is_(None))
            .order_by(col(Sample.id))
        ).all()
    )


def is_held_out(image_sha256: str, fraction: float) -> bool:
    """Deterministic split by image hash: the same image always lands on the same side."""
    return int(image_sha256[:8], 16) / 0x1_0000_0000 < fraction


def latest_built(session: Session, name: str, who: str) -> DatasetVersion | None:
    """The newest version ``who`` (the worker) built whose folder still exists: the next
    version starts from it, so samples labelled for earlier versions are never lost."""
    rows = session.exec(
        select(DatasetVersion)
        .where(col(DatasetVersion.name) == name, col(DatasetVersion.created_by) == who)
        .order_by(col(DatasetVersion.created_at).desc(), col(DatasetVersion.id).desc())
    ).all()
    return next((r for r in rows if r.source and Path(r.source).is_dir()), None)


@dataclass(frozen=True)
class BuiltDataset:
    row: DatasetVersion
    folder: Path
    trained: list[Sample]
    held_out: list[Sample]  # this version's and its ancestors' held-out samples


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_with_samples(
    session: Session,
    store: ArtifactStore,
    *,
    name: str,
    version: str,
    base_dir: Path | None,
    base_version: str | None,
    out_root: Path,
    holdout_fraction: float,
    who: str,
) -> BuiltDataset:
    """Write ``out_root/<name>-<version>/<label>/...`` (base images + labelled samples),
    register the version with provenance and mark its samples; the caller commits."""
    if _find(session, name, version) is not None:
        raise ConflictError(f"dataset {name} version {version} exists: pick a new version")
    if base_dir is not None and not base_dir.is_dir():
        raise InvalidRequestError(
            f"dataset folder {base_dir} does not exist: set worker.dataset_dir"
        )
    samples = unused_labelled_samples(session)
    held = [s for s in samples if is_held_out(s.image_sha256, holdout_fraction)]
    # Held-out samples stay held out in every later version (the comparison set grows).
    parent = _find(session, name, base_version) if base_version is not None else None
    inherited = [int(i) for i in (parent.detail.get("holdout", []) if parent else [])]
    holdout_ids = sorted({*inherited, *(int(s.id or 0) for s in held)})
    trained = [s for s in samples if not is_held_out(s.image_sha256, holdout_fraction)]
    held_ids = {s.id for s in held}
    folder = out_root / f"{name}-{version}"
    counts: dict[str, int] = {}
    base_files = 0
    if base_dir is not None:
        for label_dir in sorted(p for p in base_dir.iterdir() if p.is_dir()):
            (folder / label_dir.name).mkdir(parents=True, exist_ok=True)
            for src in sorted(p for p in label_dir.iterdir() if p.is_file()):
                _link_or_copy(src, folder / label_dir.name / src.name)
                counts[label_dir.name] = counts.get(label_dir.name, 0) + 1
                base_files += 1
    for sample in trained:
        label = str(sample.label)
        (folder / label).mkdir(parents=True, exist_ok=True)
        _link_or_copy(store.path(sample.image_sha256), folder / label / f"sample-{sample.id}.jpg")
        counts[label] = counts.get(label, 0) + 1
    provenance = {
        str(s.id): {
            "device_id": s.device_id, "camera_id": s.camera_id, "release_id": s.release_id,
            "model_version": s.model_version, "label": s.label, "labelled_by": s.updated_by,
            "image_sha256": s.image_sha256, "use": "holdout" if s.id in held_ids else "train",
            "candidate": s.candidate,
        }
        for s in samples
    }
    row = DatasetVersion(
        name=name,
        version=version,
        sample_count=sum(counts.values()),
        class_counts=counts,
        source=str(folder),
        detail={"base_version": base_version, "base_dir": str(base_dir) if base_dir else None,
                "base_files": base_files, "samples": provenance, "holdout": holdout_ids},
        created_by=who,
    )
    session.add(row)
    now = utc_now()
    for sample in samples:
        sample.dataset_version, sample.updated_at = version, now
        session.add(sample)
    audit.record(session, who, "dataset.register", f"dataset:{name}/{version}",
                 sample_count=row.sample_count, samples=len(samples), held_out=len(held))
    session.flush()
    held_all = list(session.exec(select(Sample).where(col(Sample.id).in_(holdout_ids))).all())
    return BuiltDataset(row, folder, trained, held_all)
