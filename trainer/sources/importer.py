"""Import a local ImageFolder into a training folder: ``parkwatch data import SRC --out DIR``.

Every file is read and decoded once (the trainer's own decoder, so what passes here
trains); a file that is not a whole image is reported with its reason and left out.
Files whose bytes are already in DIR, or earlier in SRC, are skipped by sha256, so an
import run twice adds nothing and the trainer's split never sees a copy twice; the
same bytes under two labels are reported as a conflict. Files are copied, hard-linked
(same file system, no extra space) or moved (the fetch's own staging folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import SourceError
from ..imagefolder import folder_files, image_counts

Mode = Literal["copy", "hardlink", "move"]
REPORT_FILE = "import-report.json"


@dataclass(frozen=True)
class Rejected:
    path: str  # relative to the source folder
    reason: str


@dataclass
class ImportReport:
    source: Path
    out: Path
    imported: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    copied_instead_of_linked: int = 0  # hard links across file systems fall back to copies

    def summary(self) -> dict[str, object]:
        return {
            "source": str(self.source), "out": str(self.out),
            "imported": dict(sorted(self.imported.items())), "duplicates": self.duplicates,
            "rejected": [{"path": r.path, "reason": r.reason} for r in self.rejected],
            "copied_instead_of_linked": self.copied_instead_of_linked,
        }


def _inspect(path: Path) -> str:
    """The file's sha256 if it decodes as a whole image, else ``!`` and why not."""
    from ..preprocess import decode_image  # OpenCV: only when an import runs

    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"!unreadable: {exc.strerror or exc}"
    if decode_image(data) is None:
        return "!cannot be decoded (corrupt, truncated or not an image)"
    return hashlib.sha256(data).hexdigest()


def _inspect_all(paths: list[Path], on_file: Callable[[], None] | None) -> list[str]:
    def one(path: Path) -> str:
        result = _inspect(path)
        if on_file is not None:
            on_file()
        return result

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, paths))


def _existing(out: Path) -> dict[str, str]:
    """sha256 -> label of the files already in ``out``'s label folders."""
    if not out.is_dir():
        return {}
    return {hashlib.sha256(path.read_bytes()).hexdigest(): label
            for label, path in folder_files(out)}


def _place(src: Path, dest: Path, mode: Mode, report: ImportReport) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mode == "move":
        shutil.move(src, dest)
        return
    if mode == "hardlink":
        try:
            os.link(src, dest)
            return
        except OSError:  # another file system (EXDEV) or no links there: copy instead
            report.copied_instead_of_linked += 1
    shutil.copyfile(src, dest)


def _free_name(folder: Path, name: str, sha: str) -> Path:
    """``folder/name``, or ``stem-<sha8>.ext`` when another file already has that name."""
    path = folder / name
    return path if not path.exists() else folder / f"{path.stem}-{sha[:8]}{path.suffix}"


def import_image_folder(
    source: Path, out: Path, mode: Mode = "copy", on_file: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``source`` (an ImageFolder) into ``out``; the report is also written to
    ``out/import-report.json``."""
    image_counts(source, "source folder")  # a one-line error for a folder of the wrong shape
    if out.resolve().is_relative_to(source.resolve()):
        raise SourceError(f"--out {out} is inside the source folder {source}: import into a "
                          "folder outside it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create the output folder {out} ({exc.strerror or exc}): "
                          "pass a writable folder with --out") from None
    files = folder_files(source)
    if on_total is not None:
        on_total(len(files))
    seen = _existing(out)
    report = ImportReport(source, out)
    for (label, path), result in zip(files, _inspect_all([p for _, p in files], on_file),
                                     strict=True):
        rel = path.relative_to(source).as_posix()
        if result.startswith("!"):
            report.rejected.append(Rejected(rel, result[1:]))
        elif result in seen:
            if seen[result] != label:
                report.rejected.append(Rejected(rel, f"the same image is already labelled "
                                                     f"{seen[result]!r}: label conflict"))
            else:
                report.duplicates += 1
        else:
            seen[result] = label
            _place(path, _free_name(out / label, path.name, result), mode, report)
            report.imported[label] += 1
    (out / REPORT_FILE).write_text(json.dumps(report.summary(), indent=2) + "\n")
    return report


__all__ = ["REPORT_FILE", "ImportReport", "Mode", "Rejected", "import_image_folder"]
