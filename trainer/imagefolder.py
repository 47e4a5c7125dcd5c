"""The ImageFolder layout, read without decoding anything: ``root/<label>/**/<file>``.

Labels are the names of ``root``'s sub-folders; hidden files and folders (a leading
dot: ``.downloads``, ``.DS_Store``) are not part of the data. This module imports
neither numpy nor torch: the pre-flight check and ``parkwatch data`` use it to say
within a second what is wrong with a folder, before anything heavy starts.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from .errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
LAYOUT_HINT = "one sub-folder of images per label, e.g. DIR/cat/*.jpg and DIR/dog/*.jpg"


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """``(label, path)`` of every non-hidden file under ``root``'s label folders, sorted."""
    found: list[tuple[str, Path]] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    found.append((class_dir.name, Path(dirpath) / name))
    return found


def image_counts(root: Path, what: str = "data folder") -> dict[str, int]:
    """Image files (by suffix) per label folder of ``root``, every label folder listed.

    A DatasetError naming the fix when ``root`` is missing, not a folder, or holds
    no label folder with an image in it (images loose in ``root`` say so).
    """
    if not root.exists():
        raise DatasetError(f"{what} {root} does not exist: point it at an ImageFolder "
                           f"({LAYOUT_HINT})")
    if not root.is_dir():
        raise DatasetError(f"{what} {root} is a file, not a folder: point it at an ImageFolder "
                           f"({LAYOUT_HINT})")
    try:
        files = folder_files(root)
        loose = sum(1 for p in root.iterdir() if p.is_file() and is_image_name(p))
    except OSError as exc:
        raise DatasetError(f"cannot read {what} {root}: {exc.strerror or exc}") from None
    labels = sorted({p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")})
    counts = Counter(label for label, path in files if is_image_name(path))
    if not counts:
        if loose:
            raise DatasetError(
                f"{what} {root} is not an ImageFolder: its {loose} image(s) lie directly in it, "
                f"not in label sub-folders; move them into {LAYOUT_HINT}"
            )
        holds = f"sub-folders {labels} without image files" if labels else "nothing usable"
        raise DatasetError(
            f"{what} {root} is not an ImageFolder: it holds {holds} (images are "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}); it needs {LAYOUT_HINT}"
        )
    return {label: counts.get(label, 0) for label in labels}


def format_counts(counts: Mapping[str, int]) -> str:
    """``cat 2, dog 3`` (at most 8 labels named)."""
    items = sorted(counts.items())
    text = ", ".join(f"{label} {n}" for label, n in items[:8])
    return text + (f" and {len(items) - 8} more labels" if len(items) > 8 else "")


__all__ = ["IMAGE_SUFFIXES", "LAYOUT_HINT", "folder_files", "format_counts", "image_counts",
           "is_image_name"]
