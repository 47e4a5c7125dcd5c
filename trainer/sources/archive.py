"""Read tarballs safely: every member is checked before anything is taken from it.

A member that would land outside the destination (``../x``, ``/etc/x``, a link out,
a device file) makes the whole archive refused: a real data set never holds one, so
it means the archive is not what it claims to be. The check is the standard library's
own extraction filter (``tarfile.data_filter``, PEP 706) plus a plain refusal of any
``..`` component. Files are then written by this code under names it builds, never
by ``tarfile.extractall``.
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import SourceError


def _refuse(archive: Path, member: tarfile.TarInfo, why: str) -> SourceError:
    return SourceError(
        f"{archive.name} holds an unsafe member {member.name!r} ({why}): refused the whole "
        "archive; it is not the data set it claims to be (check --base-url and the checksums)"
    )


def checked_members(
    archive: Path, tar: tarfile.TarFile, dest: Path
) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """``(member, file or None)`` for each member, in archive order, after the safety check."""
    for member in tar:
        if ".." in PurePosixPath(member.name).parts:
            raise _refuse(archive, member, "a '..' path component")
        try:
            tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as exc:
            raise _refuse(archive, member, str(exc)) from None
        yield member, tar.extractfile(member) if member.isfile() else None


def open_tarball(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f"{archive} is not a readable tarball ({exc}): delete it and fetch "
                          "again") from None


def read_member(archive: Path, name: str) -> bytes:
    """The bytes of the regular file ``name`` in ``archive`` (every member checked on the way)."""
    with open_tarball(archive) as tar:
        for member, data in checked_members(archive, tar, archive.parent):
            if member.name == name and data is not None:
                return data.read()
    raise SourceError(f"{archive.name} has no {name}: it is not the expected archive")


def extract_selected(
    archive: Path, dest: Path, target_of: Callable[[str], str | None],
    on_file: Callable[[], None] | None = None,
) -> int:
    """Write each regular file whose ``target_of(member name)`` is a relative path to
    ``dest/<that path>``; returns how many. Any unsafe member refuses the archive."""
    count = 0
    with open_tarball(archive) as tar:
        for member, data in checked_members(archive, tar, dest):
            target = target_of(member.name) if data is not None else None
            if target is None or data is None:
                continue
            path = dest / target
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                shutil.copyfileobj(data, out)
            count += 1
            if on_file is not None:
                on_file()
    return count


__all__ = ["checked_members", "extract_selected", "open_tarball", "read_member"]
