"""The data validation report: bad files, duplicates, balance, image statistics, leakage.

Computed from the scan (which already decoded every file once and kept a 64-bit
difference hash and the mean brightness of each image), so it costs no extra pass
over the data. Near duplicates are pairs whose dHash differ in at most
``near_duplicate_bits`` bits; candidates come from band buckets (pigeonhole: two
hashes within ``k`` bits agree exactly on at least one of ``k + 1`` bands), so the
check stays close to linear on 100k images instead of comparing every pair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import DatasetScan, ImageRecord
from .hashing import dhash, hamming

MAX_LISTED = 50  # groups or pairs listed per finding; the counts are always complete


def near_duplicate_pairs(hashes: Sequence[int], max_bits: int) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for every pair i < j with Hamming distance <= ``max_bits``."""
    bands = max_bits + 1
    width = 64 // bands
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int, int]] = []
    for band in range(bands):
        shift = band * width
        size = 64 - shift if band == bands - 1 else width
        mask = (1 << size) - 1
        buckets: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(hashes):
            buckets[(h >> shift) & mask].append(i)
        for members in buckets.values():
            for x, i in enumerate(members):
                for j in members[x + 1 :]:
                    if (i, j) in seen:
                        continue
                    seen.add((i, j))
                    d = hamming(hashes[i], hashes[j])
                    if d <= max_bits:
                        out.append((i, j, d))
    return sorted(out)


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {}
    q = np.quantile(v, [0.0, 0.05, 0.5, 0.95, 1.0])
    return {
        "mean": float(v.mean()), "std": float(v.std()), "min": float(q[0]),
        "p05": float(q[1]), "median": float(q[2]), "p95": float(q[3]), "max": float(q[4]),
    }


def _records_by_sha(records: Sequence[ImageRecord]) -> list[list[ImageRecord]]:
    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        groups[r.sha256].append(r)
    return [g for g in groups.values() if len(g) > 1]


def validation_report(scan: DatasetScan, near_duplicate_bits: int = 4) -> dict[str, Any]:
    """JSON-ready report of the dataset's problems and statistics (see the module doc)."""
    records = scan.records
    exact = _records_by_sha(records)
    conflicts = [g for g in exact if len({r.label for r in g}) > 1]
    # Near duplicates: one representative per distinct file content, so exact copies are
    # not reported twice.
    unique = list({r.sha256: r for r in records}.values())
    pairs = near_duplicate_pairs([r.dhash for r in unique], near_duplicate_bits)
    near = [(unique[i], unique[j], d) for i, j, d in pairs]
    leaks = [(a, b, d) for a, b, d in near if a.split != b.split]
    leak_kinds = Counter("-".join(sorted((a.split, b.split))) for a, b, _ in leaks)
    counts = Counter(r.label for r in records)
    largest, smallest = max(counts.values()), min(counts.values())
    rejected_kinds = Counter(r.reason.split(" (")[0].split(":")[0] for r in scan.rejected)
    warnings: list[str] = []
    if scan.rejected:
        warnings.append(f"{len(scan.rejected)} file(s) rejected and excluded")
    if exact:
        warnings.append(f"{len(exact)} group(s) of byte-identical files")
    if conflicts:
        warnings.append(f"{len(conflicts)} identical file group(s) carry different labels")
    if near:
        warnings.append(f"{len(near)} near-duplicate pair(s) (dHash <= {near_duplicate_bits})")
    if leaks:
        warnings.append(f"{len(leaks)} near-duplicate pair(s) cross splits (leakage)")
    if smallest and largest / smallest > 1.5:
        warnings.append(f"class imbalance: largest/smallest = {largest / smallest:.2f}")

    def pair(a: ImageRecord, b: ImageRecord, d: int) -> dict[str, Any]:
        return {"a": a.rel_path, "b": b.rel_path, "splits": [a.split, b.split], "bits": d}

    return {
        "images": len(records),
        "rejected": {
            "count": len(scan.rejected),
            "by_reason": dict(rejected_kinds),
            "files": [{"path": r.rel_path, "reason": r.reason} for r in scan.rejected],
        },
        "exact_duplicates": {
            "groups": len(exact),
            "extra_copies": sum(len(g) - 1 for g in exact),
            "label_conflicts": len(conflicts),
            "listed": [[r.rel_path for r in g] for g in exact[:MAX_LISTED]],
        },
        "near_duplicates": {
            "max_bits": near_duplicate_bits,
            "pairs": len(near),
            "listed": [pair(*p) for p in near[:MAX_LISTED]],
        },
        "leakage": {
            "cross_split_pairs": len(leaks),
            "by_splits": dict(leak_kinds),
            "listed": [pair(*p) for p in leaks[:MAX_LISTED]],
            "note": "exact copies always share a split (split by file hash)",
        },
        "class_balance": {
            "counts": {label: counts.get(label, 0) for label in scan.labels},
            "ratio_largest_to_smallest": largest / smallest if smallest else None,
        },
        "image_size": {
            "width": _stats([r.width for r in records]),
            "height": _stats([r.height for r in records]),
            "distinct_sizes": len({(r.width, r.height) for r in records}),
        },
        "brightness": _stats([r.brightness for r in records]),
        "warnings": warnings,
    }


__all__ = ["dhash", "hamming", "near_duplicate_pairs", "validation_report"]
