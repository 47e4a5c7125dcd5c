"""Verified releases on disk, and the pointer that says which one runs.

Layout under ``{data_dir}/releases``::

    downloads/{sha256}.part     a download in progress (resumed with Range; one at a time)
    {release_id}/model.onnx     verified artifact
    {release_id}/manifest.json  the *signed* manifest, re-verified on every load
    active.json                 {"current": id, "previous": id | null}

Every file lands by temp + fsync + rename (+ fsync of the folder), so power
loss at any instant leaves either the old or the new state, both verified.

Fault injection for the power-loss tests: when ``PARKWATCH_AGENT_CRASH_AT`` names
one of :data:`CRASH_POINTS`, the process SIGKILLs itself on reaching that point
(nothing is flushed, no handler runs). Unset, :func:`crash_point` is a dict lookup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols import ProtocolError, ReleaseManifest, SignedManifest, decode, verify_manifest
from protocols.api_errors import retry_after_seconds

from .errors import (
    DownloadCancelled,
    DownloadError,
    ReleaseError,
    ThrottledError,
    VerificationError,
)

log = logging.getLogger(__name__)

CHUNK = 1 << 16
MAX_MANIFEST_BYTES = 6 * 1024 * 1024
THROTTLE_DEFAULT_S = 30.0  # a 429 without a readable Retry-After
EventSink = Callable[[str, str, str | None], None]  # (kind, release_id, detail)
Cancelled = Callable[[], bool]  # asked between chunks: stop this download now?
CRASH_ENV = "PARKWATCH_AGENT_CRASH_AT"
CRASH_POINTS = (
    "manifest_verified",  # signed manifest fetched and verified, nothing downloaded yet
    "download_partial",  # part of the artifact written to downloads/{sha}.part
    "download_synced",  # whole .part written and fsynced, not yet hashed
    "download_verified",  # .part hashed and verified
    "install_staged",  # model + manifest in the staging folder, not fsynced
    "install_synced",  # staging folder fsynced, not yet renamed into place
    "install_renamed",  # release folder renamed into place, parent not fsynced
    "installed",  # install returned (agent: before loading the model)
    "smoke_tested",  # new session loaded and smoke-tested, pointer untouched
    "pointer_tmp_written",  # new pointer in its temp file, not renamed
    "pointer_renamed",  # new pointer renamed into place, folder not fsynced
    "pointer_written",  # pointer durable, the old session still serving
    "swapped",  # new session serving, reported state not yet updated
)


def crash_point(name: str) -> None:
    """SIGKILL this process at ``name`` when the fault-injection variable asks for it."""
    if os.environ.get(CRASH_ENV) == name:
        log.warning("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class InstalledRelease:
    release_id: str
    manifest: ReleaseManifest
    model_path: Path


@dataclass(frozen=True)
class ActivePointer:
    current: str | None = None
    previous: str | None = None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, crash_prefix: str | None = None) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new content."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if crash_prefix:
        crash_point(f"{crash_prefix}_tmp_written")
    os.replace(tmp, path)
    if crash_prefix:
        crash_point(f"{crash_prefix}_renamed")
    fsync_dir(path.parent)


def _never() -> bool:
    return False


def sha256_file(path: Path, cancelled: Cancelled = _never) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if cancelled():
                raise DownloadCancelled(f"hashing {path.name} stopped")
            digest.update(chunk)
    return digest.hexdigest()


class ReleaseStore:
    """Fetches, verifies, installs and activates releases under ``{data_dir}/releases``."""

    def __init__(
        self,
        data_dir: Path,
        control_plane_url: str,
        api_token: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        timeout: float = 30.0,
        on_event: EventSink | None = None,
    ) -> None:
        self.root = data_dir / "releases"
        self.downloads = self.root / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._base = control_plane_url.rstrip("/")
        self._token = api_token
        self._keys = dict(trusted_keys)
        self._timeout = timeout
        self._on_event = on_event or (lambda kind, rid, detail: None)
        self.pinned: set[str] = set()  # kept by prune besides current/previous (the shadow)
        self.cleanup()

    @property
    def trusted_key_ids(self) -> list[str]:
        return sorted(self._keys)

    # -- HTTP ------------------------------------------------------------------------------
    def _request(self, path: str, headers: dict[str, str] | None = None) -> IO[bytes]:
        req = urllib.request.Request(
            f"{self._base}{path}",
            headers={"Authorization": f"Bearer {self._token}", **(headers or {})},
        )
        try:
            resp: IO[bytes] = urllib.request.urlopen(req, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416:
                raise
            detail = exc.read(500).decode(errors="replace")
            if exc.code == 429 or (exc.code == 503 and exc.headers.get("Retry-After")):
                wait = retry_after_seconds(exc.headers.get("Retry-After"), THROTTLE_DEFAULT_S)
                raise ThrottledError(
                    f"GET {path} throttled ({exc.code}), retry in {wait:.0f} s: {detail}", wait
                ) from None
            raise DownloadError(f"GET {path} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(f"GET {path} failed: {exc}") from None
        return resp

    def fetch_manifest(self, release_id: str) -> tuple[SignedManifest, ReleaseManifest]:
        """Download and verify the signed manifest of ``release_id``."""
        with self._request(f"/api/v1/releases/{release_id}/manifest") as resp:
            raw = resp.read(MAX_MANIFEST_BYTES + 1)
        try:
            signed = decode(SignedManifest, raw)
            manifest = verify_manifest(signed, self._keys)
        except ProtocolError as exc:
            raise VerificationError(f"manifest of {release_id} refused: {exc}") from None
        if manifest.release_id != release_id:
            raise VerificationError(
                f"asked for release {release_id}, the signed manifest is for {manifest.release_id}"
            )
        crash_point("manifest_verified")
        return signed, manifest

    def download_artifact(self, manifest: ReleaseManifest, cancelled: Cancelled = _never
                          ) -> Path:
        """Fetch the primary artifact into ``downloads/{sha}.part``, resuming; verify it.
        ``cancelled`` is asked between chunks (DownloadCancelled; the part is kept)."""
        art = manifest.artifact
        part = self.downloads / f"{art.sha256}.part"
        for superseded in self.downloads.glob("*.part"):  # one download at a time
            if superseded != part:
                superseded.unlink(missing_ok=True)
        have = part.stat().st_size if part.exists() else 0
        if have > art.size_bytes:
            part.unlink()
            have = 0
        if have < art.size_bytes:
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                resp = self._request(f"/api/v1/artifacts/{art.sha256}", headers)
            except urllib.error.HTTPError:  # 416: our partial file does not fit the server's
                part.unlink(missing_ok=True)
                return self.download_artifact(manifest, cancelled)
            with resp, part.open("ab" if have else "wb") as out:
                if have and getattr(resp, "status", 200) != 206:
                    out.truncate(0)  # the server ignored Range: start over
                    have = 0
                limit = art.size_bytes - have + 1  # one byte more reveals an oversize file
                while limit > 0 and (chunk := resp.read(min(CHUNK, limit))):
                    if cancelled():
                        raise DownloadCancelled(f"download of {art.sha256[:12]} stopped")
                    out.write(chunk)
                    limit -= len(chunk)
                    if out.tell() >= art.size_bytes // 2:
                        out.flush()
                        crash_point("download_partial")
                out.flush()
                os.fsync(out.fileno())
                crash_point("download_synced")
        size = part.stat().st_size
        if size < art.size_bytes:  # kept: the next attempt resumes from here
            raise DownloadError(
                f"download of artifact {art.sha256[:12]} incomplete: {size} of "
                f"{art.size_bytes} bytes"
            )
        if size > art.size_bytes:
            part.unlink()
            raise VerificationError(
                f"artifact {art.sha256[:12]} is {size} bytes, the manifest says {art.size_bytes}"
            )
        digest = sha256_file(part, cancelled)
        if digest != art.sha256:
            part.unlink()
            raise VerificationError(
                f"artifact sha256 mismatch: manifest {art.sha256[:12]}, downloaded {digest[:12]}"
            )
        crash_point("download_verified")
        return part

    # -- install / load -------------------------------------------------------------------
    def install(self, release_id: str, cancelled: Cancelled = _never) -> InstalledRelease:
        """Make ``release_id`` available locally, verified; no-op if it already is.
        ``cancelled`` stops the download (DownloadCancelled) when a newer state waits."""
        try:
            return self.load(release_id)
        except ReleaseError:
            pass
        signed, manifest = self.fetch_manifest(release_id)
        self._on_event("download_started", release_id, f"artifact {manifest.artifact.sha256}")
        part = self.download_artifact(manifest, cancelled)
        self._on_event("download_verified", release_id, f"{manifest.artifact.size_bytes} bytes")
        final = self.root / release_id
        staging = self.root / f".{release_id}.{uuid.uuid4().hex[:8]}.tmp"
        staging.mkdir()
        os.replace(part, staging / "model.onnx")
        (staging / "manifest.json").write_bytes(signed.model_dump_json(by_alias=True).encode())
        crash_point("install_staged")
        for name in ("model.onnx", "manifest.json"):
            with (staging / name).open("rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(staging)
        crash_point("install_synced")
        if final.exists():  # an earlier copy that no longer verifies
            shutil.rmtree(final)
        os.replace(staging, final)
        crash_point("install_renamed")
        fsync_dir(self.root)
        return self.load(release_id)

    def load(self, release_id: str) -> InstalledRelease:
        """Re-verify an installed release (signature, size, sha256) and return it."""
        folder = self.root / release_id
        model, signed_path = folder / "model.onnx", folder / "manifest.json"
        if not model.is_file() or not signed_path.is_file():
            raise ReleaseError(f"release {release_id} is not installed")
        try:
            signed = decode(SignedManifest, signed_path.read_bytes())
            manifest = verify_manifest(signed, self._keys)
        except ProtocolError as exc:
            raise VerificationError(f"installed manifest of {release_id}: {exc}") from None
        if manifest.release_id != release_id:
            raise VerificationError(f"{folder} holds release {manifest.release_id}")
        art = manifest.artifact
        if model.stat().st_size != art.size_bytes or sha256_file(model) != art.sha256:
            raise VerificationError(f"installed model of {release_id} does not match its sha256")
        return InstalledRelease(release_id, manifest, model)

    # -- the active pointer ---------------------------------------------------------------
    @property
    def pointer_path(self) -> Path:
        return self.root / "active.json"

    def read_pointer(self) -> ActivePointer:
        try:
            data = json.loads(self.pointer_path.read_text())
            return ActivePointer(data.get("current"), data.get("previous"))
        except FileNotFoundError:
            return ActivePointer()
        except (OSError, ValueError, AttributeError) as exc:
            log.error("active pointer unreadable, starting without a model: %s", exc)
            return ActivePointer()

    def activate(self, release_id: str) -> ActivePointer:
        """Point ``current`` at an installed, verified release; the old current becomes previous."""
        old = self.read_pointer()
        previous = old.current if old.current != release_id else old.previous
        new = ActivePointer(release_id, previous)
        write_atomic(self.pointer_path, json.dumps(new.__dict__).encode(), "pointer")
        crash_point("pointer_written")
        self.prune(keep={release_id, previous})
        return new

    def load_active(self) -> tuple[InstalledRelease | None, str | None]:
        """The verified current release, else the previous one; second item says why."""
        pointer = self.read_pointer()
        if pointer.current is None:
            return None, None
        try:
            return self.load(pointer.current), None
        except ReleaseError as exc:
            reason = f"active release {pointer.current} failed verification: {exc}"
            log.error(reason, extra={"release_id": pointer.current})
        if pointer.previous is not None:
            try:
                release = self.load(pointer.previous)
            except ReleaseError as exc:
                log.error("previous release %s failed too: %s", pointer.previous, exc,
                          extra={"release_id": pointer.previous})
            else:
                self.fall_back_to(pointer.previous)
                return release, reason
        return None, reason

    def fall_back_to(self, release_id: str | None) -> None:
        """Make ``release_id`` current with no previous (the broken current is forgotten);
        None: no model at all."""
        write_atomic(self.pointer_path,
                     json.dumps({"current": release_id, "previous": None}).encode())

    # -- housekeeping -----------------------------------------------------------------------
    def cleanup(self) -> None:
        """Remove what an interrupted install or pointer write left behind, and every
        partial download but the newest (the one a restart resumes): disk use stays bounded."""
        for path in self.root.glob(".*.tmp"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        parts = sorted(self.downloads.glob("*.part"), key=lambda p: p.stat().st_mtime)
        for stale in parts[:-1]:
            stale.unlink(missing_ok=True)

    def prune(self, keep: set[str | None]) -> None:
        for path in self.root.iterdir():
            if path.is_dir() and not path.name.startswith(".") and path != self.downloads \
                    and path.name not in keep and path.name not in self.pinned:
                shutil.rmtree(path, ignore_errors=True)
