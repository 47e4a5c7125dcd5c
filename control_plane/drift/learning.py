"""Production baselines in the store: loaded for an analysis, learned when missing, reset.

A camera × condition gets its baseline under a release once the release is healthy on
its device (the agent's reported stage) and ``baseline_windows`` windows of that camera
in that condition arrived after the last reset (by the control plane's receipt time,
never the agent's clock), over as many days as it takes: each analysis keeps a learning
key's new windows (``baseline_pool``) until there are enough. Each new baseline of a
(device, camera, condition) gets the next version; an operator's reset retires the active
ones, and a new release learns its own (its bins are its own profile's), so an accepted
promotion starts afresh.
"""

from __future__ import annotations

import hashlib
import logging
import math
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import from_json
from sqlmodel import Session, col, func, select

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from ..errors import NotFoundError
from ..store.among import among
from ..store.models import Device, DriftBaseline, utc_now
from . import baseline as bl
from . import baseline_pool as pool
from . import unlearned, wording
from .collect import STREAM_ROWS, Collected, DeviceWindows, rows_of

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (camera id, condition)
# How many of a device's windows one learning attempt reads at most, as a multiple of
# ``baseline_windows``: several cameras and conditions share a device's windows. A key
# seen before reads only the windows since its last pooled one (``baseline_pool``).
READ_FACTOR = 8


@dataclass(frozen=True)
class ActiveBaseline:
    """What an analysis reads of an active baseline (``DriftBaseline``'s fields; ``levels``
    parsed, which ``baseline.levels_of`` takes as they are)."""

    id: int
    version: int
    window_minutes: float
    counts: dict[str, array[float]]
    levels: dict[str, bl.Level]


def _packed(counts: dict[str, list[float]]) -> dict[str, array[float]]:
    # A fleet's baselines stay in memory through its analysis: 8 bytes a count, where a
    # list of Python floats takes 32.
    return {name: array("d", values) for name, values in counts.items()}


# Parsed levels by baseline (id, version), beside a digest of the text they were parsed
# from. A stored baseline's levels never change (a relearnt one is a new row, a reset
# retires it), so the server's periodic analyses parse each one once, where parsing them
# was about a tenth of a 10,000-device report; the digest tells a row of another store
# with the same id and version (a restored backup, tests) apart. Cleared when full: the
# active baselines of a large fleet fit many times over.
_LEVELS: dict[tuple[int, int], tuple[bytes, dict[str, bl.Level]]] = {}
LEVELS_KEPT = 65_536


def _levels(id_: int, version: int, text: str) -> dict[str, bl.Level]:
    """A stored baseline's levels parsed, from the process's cache when its text is the
    one they were parsed from."""
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    kept = _LEVELS.get((id_, version))
    if kept is not None and kept[0] == digest:
        return kept[1]
    if len(_LEVELS) >= LEVELS_KEPT:
        _LEVELS.clear()
    levels = bl.levels_of(from_json(text))
    _LEVELS[(id_, version)] = (digest, levels)
    return levels


def active(session: Session, release_ids: list[str], device_ids: list[str] | None = None
           ) -> dict[tuple[str, str], dict[Key, Any]]:
    """Active baselines of these releases (of these devices only, if given):
    {(release, device): {(camera, condition): row}}.

    A fleet has one per camera and condition: read as plain columns, the JSON parsed by
    pydantic-core, not as ORM objects (their per-row type processing and identity map
    were a fifth of a 1,000-device report)."""
    out: dict[tuple[str, str], dict[Key, Any]] = defaultdict(dict)
    if not release_ids:
        return out
    b = DriftBaseline
    query = (
        sa.select(col(b.release_id), col(b.device_id), col(b.camera_id), col(b.condition),
                  col(b.id), col(b.version), col(b.window_minutes),
                  sa.cast(col(b.counts), sa.Text), sa.cast(col(b.levels), sa.Text))
        .where(col(b.release_id).in_(release_ids), col(b.retired_at).is_(None))
    )
    batches = ([query] if device_ids is None else
               [query.where(col(b.device_id).in_(device_ids[i : i + 500]))
                for i in range(0, len(device_ids), 500)])
    for batch in batches:
        rows = rows_of(session, batch.execution_options(yield_per=STREAM_ROWS))
        for rel, device_id, camera_id, condition, id_, version, minutes, counts, levels in rows:
            out[(rel, device_id)][(camera_id, condition)] = ActiveBaseline(
                id_, version, minutes, _packed(from_json(counts)), _levels(id_, version, levels))
    return out


def _not_healthy(session: Session, device_ids: list[str], release_id: str) -> dict[str, str]:
    """Those of ``device_ids`` that do not report ``release_id`` healthy, with what they
    report instead (one query per 500)."""
    out = {d: "nothing yet" for d in device_ids}
    for i in range(0, len(device_ids), 500):
        rows = session.exec(select(Device.device_id, Device.reported)
                            .where(col(Device.device_id).in_(device_ids[i : i + 500])))
        for device_id, reported in rows:
            act = (reported or {}).get("active")
            if not isinstance(act, dict) or not act.get("release_id"):
                continue
            if act["release_id"] != release_id:
                out[device_id] = f"release {act['release_id']} active"
            elif act.get("stage") == "healthy":
                del out[device_id]
            else:
                out[device_id] = f"stage {act.get('stage') or 'unknown'}"
    return out


Resets = dict[Key, tuple[datetime | None, int]]  # per key: latest retirement, top version


def _resets(session: Session, device_ids: list[str]) -> dict[str, Resets]:
    """Per device, per (camera, condition): the latest retirement time and the highest
    version (one query per 500 devices: a chunk's learning reads them at once)."""
    out: dict[str, Resets] = defaultdict(dict)
    b = DriftBaseline
    for i in range(0, len(device_ids), 500):
        rows = session.execute(
            sa.select(col(b.device_id), col(b.camera_id), col(b.condition),
                      func.max(b.retired_at), func.max(b.version))
            .where(col(b.device_id).in_(device_ids[i : i + 500]))
            .group_by(col(b.device_id), col(b.camera_id), col(b.condition)))
        for d, c, k, r, v in rows:
            out[d][(c, k)] = (r, int(v))
    return out


Timed = tuple[datetime, dict[str, Any]]  # (receipt time, camera dict with window_minutes)


def _fit(profile: ReferenceProfile, windows: list[Timed], settings: DriftSettings
         ) -> bl.Fit | None:
    return bl.learn(profile, [c for _, c in windows], min_samples=settings.min_samples,
                    block=settings.baseline_block, recent=settings.alert_windows,
                    mix_span=settings.mix_windows)


def _first_fit(profile: ReferenceProfile, tries: list[list[Timed]], settings: DriftSettings
               ) -> tuple[list[Timed], bl.Fit] | BaseException | None:
    """The first of ``tries`` that makes a baseline judging at least one feature, with the
    windows it used; None when none does; what fitting raised, if it did (one camera's
    fit never stops the rest). A fit with no level at all would judge nothing, and, as a
    baseline, would also take the camera × condition off the hour check for good: it is
    not stored, and later windows are tried at the next analysis."""
    try:
        return next(((w, f) for w in tries if (f := _fit(profile, w, settings)) and f.levels),
                    None)
    except Exception as exc:  # recorded and logged: the other cameras go on
        return exc


def _learn_device(
    session: Session,
    profile: ReferenceProfile,
    key_of: tuple[str, str],
    missing: set[Key],
    known: tuple[Resets, dict[Key, pool.Held]],
    settings: DriftSettings,
) -> tuple[list[DriftBaseline], list[unlearned.Attempt]]:
    """The baselines of ``missing`` that this device's windows make (those pooled by
    earlier analyses and those since), and an attempt for each of the others saying why
    not (``key_of``: release, device; ``known``: its resets and what its pool holds).
    Adds each key's new windows to its pool."""
    release_id, device_id = key_of
    resets, held = known
    n = settings.baseline_windows
    reset_at = {k: resets.get(k, (None, 0))[0] for k in missing}
    new = pool.read_new(session, device_id, release_id, missing, reset_at, held,
                        n * READ_FACTOR)
    made, attempts = [], []
    for key in sorted(missing):
        have, fresh = held.get(key, pool.Held()), new.get(key, [])
        count = have.count + len(fresh)
        if count < n:
            pool.add(session, device_id, release_id, key, fresh)
            times = [t for t in (have.first, have.last) if t] + [at for _, at, _ in fresh]
            attempts.append(unlearned.Attempt(
                device_id, *key, release_id, "too_few_windows", wording.too_few_windows(
                    key[1], count, n, _days(min(times), max(times)) if times else None),
                count, n))
            continue
        if not fresh:
            continue  # nothing new since the attempt that found these n could make none
        kept_before = pool.entries(session, device_id, release_id, key) if have.count else []
        windows = kept_before + fresh
        # When the first windows cannot make one (too quiet to judge, say), the latest
        # are tried: they move on with every window, where the first ones would be
        # retried unchanged.
        tries = [windows[:n]] if len(windows) == n else [windows[:n], windows[-n:]]
        learned = _learn_key(profile, (device_id, *key, release_id),
                             [[(at, c) for _, at, c in w] for w in tries], settings,
                             resets.get(key, (None, 0))[1] + 1)
        if isinstance(learned, unlearned.Attempt):
            attempts.append(learned)
            # The latest n stay pooled, for the next analysis to try with its windows.
            kept = {i for i, _, _ in windows[-n:]}
            pool.drop(session, device_id, release_id, key,
                      {i for i, _, _ in kept_before} - kept)
            pool.add(session, device_id, release_id, key, [e for e in fresh if e[0] in kept])
        else:
            pool.drop(session, device_id, release_id, key)
            session.add(learned)
            made.append(learned)
    return made, attempts


def _days(first: datetime, last: datetime) -> int | None:
    """Days a key's pooled windows were received on, counting the first (None: all within
    a day of it): a dusk on 4 evenings spans 3 days and minutes, and is 4 days' worth."""
    span = (last - first).total_seconds() / 86_400
    return None if span < 1 else math.floor(span) + 1


def _learn_key(profile: ReferenceProfile, key: unlearned.KeyOf, tries: list[list[Timed]],
               settings: DriftSettings, version: int) -> DriftBaseline | unlearned.Attempt:
    """One camera × condition's baseline from the first of ``tries`` that makes one, or
    the attempt that says why none did."""
    device_id, camera_id, condition, release_id = key
    n = settings.baseline_windows
    fitted = _first_fit(profile, tries, settings)
    where = {"device_id": device_id, "camera": camera_id, "condition": condition,
             "release_id": release_id}
    if isinstance(fitted, BaseException):
        log.error("drift baseline fit failed", exc_info=fitted, extra=where)
        return unlearned.Attempt(*key, "fit_failed", wording.fit_failed(fitted), n, n)
    if fitted is None:
        busy = bl.busy_windows(profile, [c for _, c in tries[-1]], settings.min_samples)
        log.info("drift baseline not learned: too few windows with enough crops",
                 extra=where | {"windows": n, "busy": busy, "min_samples": settings.min_samples})
        return unlearned.Attempt(*key, "too_few_busy_windows", wording.too_few_busy(
            condition, n, busy, settings.min_samples, bl.MIN_REPLAYS), n, n, busy)
    used, fit = fitted
    # A feature without a fitted level is not judged against this baseline: say which.
    log.info("drift baseline learned", extra=where | {"unfitted": fit.notes})
    return DriftBaseline(
        device_id=device_id, camera_id=camera_id, condition=condition, release_id=release_id,
        version=version, window_count=fit.windows, sample_count=fit.frames,
        window_minutes=fit.window_minutes, counts=fit.counts, levels=bl.fit_json(fit),
        learned_from=used[0][0], learned_to=used[-1][0],
    )


def learn_missing(
    session: Session,
    found: Collected,
    have: dict[tuple[str, str], dict[Key, Any]],
    settings: DriftSettings,
) -> int:
    """Learn the baselines that the range's cameras lack; adds them to ``have``, and
    records why each of the others was not learned (``unlearned``). Flushes."""
    made = 0
    attempts: list[unlearned.Attempt] = []
    learned: list[unlearned.KeyOf] = []
    for rel, per_device in sorted(found.devices.items()):
        lacking: dict[str, set[Key]] = {}
        for device_id, dev in sorted(per_device.items()):
            seen = {k for keys in dev.camera_keys() for k in keys}
            missing = seen - set(have.get((rel, device_id), {}))
            if missing:
                lacking[device_id] = missing
        waiting = _not_healthy(session, list(lacking), rel)
        ready = [d for d in lacking if d not in waiting]
        resets, held = _resets(session, ready), pool.held(session, rel, ready)
        for device_id, missing in lacking.items():
            if device_id in waiting:
                attempts += _waiting(per_device[device_id], rel, device_id, missing,
                                     waiting[device_id], settings)
                continue
            rows, tried = _learn_device(session, found.profiles[rel], (rel, device_id),
                                        missing, (resets[device_id], held[device_id]),
                                        settings)
            attempts += tried
            for row in rows:
                have.setdefault((rel, device_id), {})[(row.camera_id, row.condition)] = row
                learned.append((device_id, row.camera_id, row.condition, rel))
                made += 1
    session.flush()
    unlearned.record(session, attempts, learned)
    unlearned.drop_superseded(session, [d for per in found.devices.values() for d in per])
    return made


def _waiting(dev: DeviceWindows, release_id: str, device_id: str, missing: set[Key],
             reports: str, settings: DriftSettings) -> list[unlearned.Attempt]:
    """An attempt per key of a device the release is not healthy on (its windows: those
    of the device's latest the analysis read)."""
    seen = Counter(k for keys in dev.camera_keys() for k in keys)
    message = wording.not_healthy(release_id, device_id, reports)
    return [unlearned.Attempt(device_id, camera, condition, release_id,
                              "release_not_healthy", message, seen[(camera, condition)],
                              settings.baseline_windows)
            for camera, condition in sorted(missing)]


def reset(
    session: Session,
    *,
    by: str,
    reason: str,
    device_id: str | None = None,
    camera_id: str | None = None,
    condition: str | None = None,
    release_id: str | None = None,
) -> list[DriftBaseline]:
    """Retire the matching active baselines (new ones are learned from later windows).
    The caller commits."""
    query = select(DriftBaseline).where(col(DriftBaseline.retired_at).is_(None))
    for column, value in ((DriftBaseline.device_id, device_id),
                          (DriftBaseline.camera_id, camera_id),
                          (DriftBaseline.condition, condition),
                          (DriftBaseline.release_id, release_id)):
        if value is not None:
            query = query.where(col(column) == value)
    rows = list(session.exec(query))
    now = utc_now()
    for row in rows:
        row.retired_at, row.retired_by, row.retired_reason = now, by, reason[:256]
        session.add(row)
    session.flush()
    return rows


def list_baselines(
    session: Session,
    *,
    device_id: str | None = None,
    release_id: str | None = None,
    condition: str | None = None,
    active_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[DriftBaseline], int]:
    """Baselines, newest first, with the total that match."""
    where: list[Any] = []
    for column, value in ((DriftBaseline.device_id, device_id),
                          (DriftBaseline.release_id, release_id),
                          (DriftBaseline.condition, condition)):
        if value is not None:
            where.append(col(column) == value)
    if active_only:
        where.append(col(DriftBaseline.retired_at).is_(None))
    total = session.exec(select(func.count()).select_from(DriftBaseline).where(*where)).one()
    rows = session.exec(
        select(DriftBaseline).where(*where).order_by(col(DriftBaseline.id).desc())
        .limit(limit).offset(offset)
    )
    return list(rows), int(total)


def running_releases(session: Session, device_ids: list[str]) -> dict[str, str | None]:
    """The release each of these devices reports active (None: none yet): a baseline of
    another release is superseded, judging nothing until a rollback."""
    ids = sorted(set(device_ids))
    out: dict[str, str | None] = {}
    for i in range(0, len(ids), 500):
        chunk = among(session, col(Device.device_id), ids[i : i + 500])
        out |= dict(session.exec(select(Device.device_id, Device.active_release_id)
                                 .where(chunk)).all())
    return out


def unfitted(counts: dict[str, Any], levels: dict[str, Any]) -> list[str]:
    """The features a baseline holds counts of but no level for (too few busy windows to
    fit one, ``baseline.MIN_REPLAYS``): they are not judged against it."""
    return sorted(set(counts) - set(levels))


def get_baseline(session: Session, baseline_id: int) -> DriftBaseline:
    row = session.get(DriftBaseline, baseline_id)
    if row is None:
        raise NotFoundError(f"no drift baseline {baseline_id}: see `parkwatch drift baselines`")
    return row


__all__ = ["ActiveBaseline", "active", "get_baseline", "learn_missing", "list_baselines", "reset",
           "running_releases", "unfitted"]
