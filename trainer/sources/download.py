"""Download one file, resumable and verified: ``dest.part`` grows until it is whole.

A run that stops (dropped connection, Ctrl-C, power) leaves ``dest.part``; the next
run asks for the rest with ``Range: bytes=N-`` and appends (a server that ignores
Range answers 200 and the file starts over). Within one run a connection dropped
mid-file is resumed the same way, ``retries`` times. The whole file's checksum is
checked before it is renamed to ``dest``; a wrong one deletes it and says so.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SourceError

if TYPE_CHECKING:
    import httpx

CHUNK_BYTES = 1 << 20
MIRROR_FIX = "check the network, or use a mirror with --base-url / PARKWATCH_DATA_BASE_URL"

# (bytes done, bytes in all or None): the caller's progress bar.
OnProgress = Callable[[int, int | None], None]


class _Dropped(Exception):
    """The server closed the connection before the whole body came."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    resumed_from: int  # bytes already there when this run started (0: from scratch)
    cached: bool  # the verified file was there already: nothing downloaded


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the checksum upstream publishes
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _transfer(client: httpx.Client, url: str, part: Path, on_progress: OnProgress) -> None:
    """Append the rest of ``url`` to ``part`` (or start it over when the server says so)."""
    offset = _size(part)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416:  # nothing after offset: .part is whole (or too long)
            return
        if response.status_code == 200:
            offset = 0  # no Range support: start over
        elif response.status_code == 206:
            start = response.headers.get("content-range", "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                raise SourceError(f"{url} resumed at byte {start!r}, not {offset}: delete {part} "
                                  "and run again")
        else:
            raise SourceError(f"{url} answered {response.status_code} "
                              f"{response.reason_phrase}: {MIRROR_FIX}")
        length = response.headers.get("content-length")
        total = offset + int(length) if length is not None else None
        on_progress(offset, total)
        with part.open("r+b" if offset else "wb") as f:
            f.seek(offset)
            f.truncate()
            for chunk in response.iter_bytes():  # as it arrives: a drop loses nothing read
                f.write(chunk)
                offset += len(chunk)
                on_progress(offset, total)
        if total is not None and offset < total:
            raise _Dropped(f"closed at {offset} of {total} bytes")


def download(
    url: str,
    dest: Path,
    md5: str,
    *,
    retries: int = 3,
    timeout_s: float = 30.0,
    on_progress: OnProgress | None = None,
    client: httpx.Client | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``), verified against ``md5``."""
    import httpx

    if dest.exists() and file_md5(dest) == md5:
        return Downloaded(dest, _size(dest), _size(dest), cached=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    resumed_from = _size(part)
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10)),
                                  follow_redirects=True)
    try:
        for attempt in range(retries + 1):
            try:
                _transfer(http, url, part, on_progress or (lambda done, total: None))
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise SourceError(
                    f"cannot connect to {httpx.URL(url).host} for {url} ({exc}): {MIRROR_FIX}; "
                    "a partial download resumes on the next run"
                ) from None
            except (httpx.TransportError, _Dropped) as exc:
                if attempt == retries:
                    raise SourceError(
                        f"download of {url} interrupted at {_size(part)} bytes after "
                        f"{attempt + 1} attempt(s) ({type(exc).__name__}: {exc}): run the same "
                        f"command again to resume from {part}"
                    ) from None
                time.sleep(min(2.0**attempt, 10.0))
    finally:
        if own:
            http.close()
    got = file_md5(part)
    if got != md5:
        size = _size(part)
        part.unlink()
        raise SourceError(
            f"{dest.name} from {url} is corrupt or not the expected file (md5 {got}, expected "
            f"{md5}, {size} bytes): deleted it; run again, or {MIRROR_FIX}"
        )
    part.replace(dest)
    return Downloaded(dest, _size(dest), resumed_from, cached=False)


__all__ = ["Downloaded", "OnProgress", "download", "file_md5"]
