"""The feature cache's crop hits on a retraining, the old crop keys beside the new, in one run.

    python bench/crop_cache_hits.py --data ../shared/data/cats_and_dogs --photos 400 --grow 100

A crop's features are cached by its key. The old key (``{photo sha}/{j}``) left out the
neighbour drawn from the set's photo list, so on a grown dataset a cached key could stand
for another rendering (a stale hit: features of a crop with another animal beside it).
The new key names the neighbour's photo. For the first ``--photos`` training photos of
the dataset, then the same photos plus ``--grow`` more (what a retraining sees), this
counts the grown set's crop keys already cached by the first run (hits), and for the old
keys how many of those hits were stale (another neighbour). No crop is rendered and no
backbone runs: keys and neighbours are what the trainer computes, exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
from _machine import cpu_name  # bench/ is on sys.path: scripts run from it

from protocols import InputSpec
from trainer.crop_set import CropSet
from trainer.crops import NEIGHBOUR_SHARE, OTHER, REGION_CROPS
from trainer.data import ImageRecord, scan_image_folder


def old_keys(crops: CropSet) -> dict[str, str | None]:
    """Each crop's old key and its neighbour's sha256 (the previous recipe's draw)."""
    out: dict[str, str | None] = {}
    for j in range(crops.per_image):
        for r in crops.animals:
            key = f"{r.sha256}/{j}"
            rng = np.random.default_rng([crops.seed, int(hashlib.sha256(
                key.encode()).hexdigest()[:12], 16)])
            near = None
            if rng.random() < NEIGHBOUR_SHARE:
                others = [o for o in crops.animals if o is not r] or crops.animals
                near = others[int(rng.integers(len(others)))].sha256
            out[key] = near
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--grow", type=int, default=100)
    ap.add_argument("--per-image", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    scan = scan_image_folder(a.data, seed=a.seed)
    labels = scan.labels if OTHER in scan.labels else [*scan.labels, OTHER]
    train = scan.split("train")
    first, grown = train[: a.photos], train[: a.photos + a.grow]

    def crop_set(records: list[ImageRecord]) -> CropSet:
        return CropSet(records, labels.index(OTHER), InputSpec(width=160, height=160),
                       REGION_CROPS, a.per_image, 0, a.seed)

    before, after, again = crop_set(first), crop_set(grown), crop_set(first)
    print(f"{cpu_name()}, load {os.getloadavg()[0]:.1f}; {len(first)} photos grown by "
          f"{len(grown) - len(first)}, {a.per_image} crops each")
    new_before = {r.sha256 for r in before.records}
    same = [r.sha256 for r in again.records] == [r.sha256 for r in before.records]
    print(f"unchanged dataset: new keys {len(new_before)}/{len(before)} cached "
          f"({'all' if same else 'NOT all'}); old keys: all (no draw depends on the list)")
    new_hits = sum(r.sha256 in new_before for r in after.records)
    ob, oa = old_keys(before), old_keys(after)
    old_hits = [k for k in oa if k in ob]
    stale = sum(ob[k] != oa[k] for k in old_hits)
    n = len(after)
    print(f"grown dataset, {n} crops: old keys {len(old_hits)} hits "
          f"({len(old_hits) / n:.1%}), {stale} of them stale ({stale / n:.1%} of the crops "
          f"trained on features of another rendering); new keys {new_hits} hits "
          f"({new_hits / n:.1%}), none stale")


if __name__ == "__main__":
    main()
