"""A persistent cache of the frozen backbone's features, keyed by image file sha256.

Continuous training retrains on a dataset that grows: last version's images plus
new ones. The linear probe's cost is one backbone pass per image, so without a
cache every retraining pays again for every old image. Entries are keyed by the
image file's sha256 and a view ("plain" or "flip"); the table is named by a digest
of the backbone's weights and the input spec, so different weights or
preprocessing never share features. One SQLite file: writes are atomic, and two
trainers on one machine may share it (WAL, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from .errors import TrainerError

Vector = npt.NDArray[np.float32]
_FILE = "features.sqlite"


def backbone_key(model: torch.nn.Module, spec: Mapping[str, object]) -> str:
    """Digest of the backbone's weights (everything but the head ``fc``) and the input spec."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("fc."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


class FeatureCache:
    """``get``/``put`` feature vectors by (image sha256, view) for one backbone."""

    def __init__(self, directory: Path, key: str) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(directory / _FILE, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._table = f"features_{key}"
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {self._table} "
                             "(image TEXT NOT NULL, view TEXT NOT NULL, vector BLOB NOT NULL, "
                             "PRIMARY KEY (image, view))")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise TrainerError(f"feature cache {directory}: {exc}; fix the path or permissions "
                               "in feature_cache_dir, or unset it") from exc

    def close(self) -> None:
        self._db.close()

    def get(self, images: Sequence[str], view: str) -> dict[str, Vector]:
        """The cached vectors of ``images`` (a missing image is simply absent)."""
        found: dict[str, Vector] = {}
        wanted = sorted(set(images))
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            with closing(self._db.execute(
                f"SELECT image, vector FROM {self._table} WHERE view = ? AND image IN ({marks})",
                [view, *chunk],
            )) as rows:
                for image, blob in rows:
                    found[image] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, items: Iterable[tuple[str, Vector]], view: str) -> None:
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {self._table} (image, view, vector) VALUES (?, ?, ?)",
                [(image, view, np.ascontiguousarray(v, np.float32).tobytes())
                 for image, v in items],
            )


__all__ = ["FeatureCache", "backbone_key"]
