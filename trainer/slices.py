"""Slice tags for per-slice metrics (e.g. day vs night), from ``slices.json`` in the data root.

``<data_dir>/slices.json`` maps a slice name to a list of path patterns relative
to the data root (``fnmatch`` syntax; ``*`` crosses folders), e.g.::

    {"night": ["*/night_*", "cat/cam7/*"], "day": ["*/day_*"]}

An image may be in several slices or none. Without the file there are no slices.
The file is not an image, so the scan ignores it (files outside label folders
are never read as data).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from .data import ImageRecord
from .errors import DatasetError

SLICES_FILE = "slices.json"


def load_slices(data_dir: Path) -> dict[str, list[str]]:
    """Slice name -> patterns; {} without a slices.json; DatasetError if it is malformed."""
    path = data_dir / SLICES_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v)
        for k, v in raw.items()
    ):
        raise DatasetError(
            f'{path} must map slice names to lists of path patterns, e.g. {{"night": ["*/n_*"]}}'
        )
    return {name: list(patterns) for name, patterns in sorted(raw.items())}


def slice_members(
    records: Sequence[ImageRecord], slices: dict[str, list[str]]
) -> dict[str, list[int]]:
    """Slice name -> indices into ``records`` whose relative path matches any pattern."""
    return {
        name: [
            i for i, r in enumerate(records)
            if any(fnmatchcase(r.rel_path, pattern) for pattern in patterns)
        ]
        for name, patterns in slices.items()
    }


__all__ = ["SLICES_FILE", "load_slices", "slice_members"]
