"""The data validation report: each kind of bad or suspicious file, balance, stats, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from scripts.synth_images import generate_dataset
from trainer.data import scan_image_folder
from trainer.hashing import dhash, hamming
from trainer.preprocess import read_image
from trainer.validate import near_duplicate_pairs, validation_report


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    generate_dataset(root, n_per_class=12, seed=3, size=48)
    return root


def _report(folder: Path) -> dict[str, object]:
    report = validation_report(scan_image_folder(folder))
    json.dumps(report)  # JSON-ready
    return report


def test_a_clean_synthetic_set_has_no_findings(folder: Path) -> None:
    report = _report(folder)
    assert report["warnings"] == []
    assert report["exact_duplicates"]["groups"] == 0  # type: ignore[index]
    assert report["class_balance"]["counts"] == {"cat": 12, "dog": 12}  # type: ignore[index]
    assert report["image_size"]["width"]["median"] == 48  # type: ignore[index]
    assert 0 < report["brightness"]["mean"] < 255  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("truncated.jpg", "half", "decoded"),
        ("garbage.jpg", b"\xff\xd8\xff\xe0 not a jpeg at all", "decoded"),
        ("empty.png", b"", "decoded"),
        ("notes.txt", b"a note", "not an image"),
    ],
)
def test_each_bad_file_kind_is_listed_and_excluded(
    folder: Path, name: str, payload: bytes | str, reason: str
) -> None:
    good = sorted((folder / "cat").iterdir())[0].read_bytes()
    data = good[: len(good) // 2] if payload == "half" else payload
    assert isinstance(data, bytes)
    (folder / "cat" / name).write_bytes(data)
    report = _report(folder)
    rejected = report["rejected"]
    assert rejected["count"] == 1  # type: ignore[index]
    assert rejected["files"][0]["path"] == f"cat/{name}"  # type: ignore[index]
    assert reason in rejected["files"][0]["reason"]  # type: ignore[index]
    assert report["images"] == 24  # excluded from the data


def test_exact_duplicates_and_label_conflicts(folder: Path) -> None:
    src = sorted((folder / "cat").iterdir())[0]
    (folder / "cat" / "copy.jpg").write_bytes(src.read_bytes())
    (folder / "dog" / "mislabelled.jpg").write_bytes(src.read_bytes())
    dup = _report(folder)["exact_duplicates"]
    assert dup["groups"] == 1 and dup["extra_copies"] == 2  # type: ignore[index]
    assert dup["label_conflicts"] == 1  # type: ignore[index]
    assert sorted(dup["listed"][0]) == sorted(  # type: ignore[index]
        ["cat/copy.jpg", "dog/mislabelled.jpg", f"cat/{src.name}"]
    )


def test_near_duplicates_reencoded_and_brightened(folder: Path) -> None:
    src = sorted((folder / "dog").iterdir())[0]
    img = read_image(src).astype(np.int16) + 6
    cv2.imwrite(str(folder / "dog" / "near.jpg"), np.clip(img, 0, 255).astype(np.uint8),
                [cv2.IMWRITE_JPEG_QUALITY, 60])
    near = _report(folder)["near_duplicates"]
    pairs = {frozenset((p["a"], p["b"])) for p in near["listed"]}  # type: ignore[index]
    assert frozenset((f"dog/{src.name}", "dog/near.jpg")) in pairs


def test_leakage_counts_near_duplicates_across_splits(folder: Path) -> None:
    # Slightly different copies of one image hash to different splits sooner or later.
    src = read_image(sorted((folder / "cat").iterdir())[0])
    for k in range(6):  # 7 near-identical images: 21 pairs, below the listing cap
        img = src.copy()
        img[k, 0] = (img[k, 0].astype(int) + 40) % 256
        cv2.imwrite(str(folder / "cat" / f"variant_{k}.png"), img)
    scan = scan_image_folder(folder)
    report = validation_report(scan)
    leak = report["leakage"]
    near = report["near_duplicates"]["listed"]
    crossing = [p for p in near if p["splits"][0] != p["splits"][1]]
    assert leak["cross_split_pairs"] == len(crossing) > 0
    assert any("leakage" in w for w in report["warnings"])


def test_class_imbalance_is_flagged(folder: Path) -> None:
    for path in sorted((folder / "dog").iterdir())[:6]:
        path.unlink()
    report = _report(folder)
    assert report["class_balance"]["ratio_largest_to_smallest"] == 2.0  # type: ignore[index]
    assert any("imbalance" in w for w in report["warnings"])  # type: ignore[attr-defined]


def test_dhash_is_robust_to_small_changes_and_separates_different_images() -> None:
    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.integers(0, 255, (64, 64), dtype=np.uint8), (0, 0), 3)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    c = cv2.GaussianBlur(rng.integers(0, 255, (64, 64), dtype=np.uint8), (0, 0), 3)
    assert hamming(dhash(a), dhash(b)) <= 2
    assert hamming(dhash(a), dhash(c)) > 10


def test_banded_search_finds_the_same_pairs_as_brute_force() -> None:
    rng = np.random.default_rng(1)
    base = [int(v) for v in rng.integers(0, 2**63, 40)]
    hashes = base + [h ^ (1 << int(rng.integers(64))) ^ (1 << int(rng.integers(64))) for h in base]
    brute = sorted(
        (i, j, hamming(hashes[i], hashes[j]))
        for i in range(len(hashes)) for j in range(i + 1, len(hashes))
        if hamming(hashes[i], hashes[j]) <= 4
    )
    assert near_duplicate_pairs(hashes, 4) == brute
