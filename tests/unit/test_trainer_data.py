"""The dataset: content versioning, the hash split, rejected files, InputSpec preprocessing."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from protocols import InputSpec
from scripts.synth_images import generate_dataset
from trainer.data import ImageDataset, assign_split, dataset_version, scan_image_folder
from trainer.errors import DatasetError
from trainer.preprocess import augment, decode_image, preprocess, read_image, resize_to_input


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    generate_dataset(root, n_per_class=12, seed=3, size=48)
    return root


def test_version_is_stable_across_scans_and_locations(folder: Path, tmp_path: Path) -> None:
    first = scan_image_folder(folder)
    again = scan_image_folder(folder)
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder, moved)
    assert first.version == again.version == scan_image_folder(moved).version
    assert len(first.version) == 64
    assert first.labels == ["cat", "dog"]


def test_version_changes_when_a_file_changes(folder: Path) -> None:
    before = scan_image_folder(folder).version
    victim = sorted((folder / "cat").iterdir())[0]
    img = read_image(victim).copy()
    img[0, 0] = 255 - img[0, 0]
    cv2.imwrite(str(victim), img, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert scan_image_folder(folder).version != before


def test_version_changes_when_a_file_is_added(folder: Path) -> None:
    before = scan_image_folder(folder).version
    src = sorted((folder / "dog").iterdir())[0]
    img = np.ascontiguousarray(read_image(src)[:, ::-1])
    cv2.imwrite(str(folder / "dog" / "extra.jpg"), img)
    assert scan_image_folder(folder).version != before


def test_version_changes_when_a_file_is_relabelled(folder: Path) -> None:
    before = scan_image_folder(folder)
    src = sorted((folder / "dog").iterdir())[0]
    src.rename(folder / "cat" / src.name)
    after = scan_image_folder(folder)
    assert after.version != before.version
    assert len(after.records) == len(before.records)


def test_version_is_order_independent_and_content_addressed() -> None:
    entries = [("cat/a.jpg", "1" * 64, "cat"), ("dog/b.jpg", "2" * 64, "dog")]
    assert dataset_version(entries) == dataset_version(list(reversed(entries)))
    assert dataset_version(entries) != dataset_version([entries[0], ("dog/b.jpg", "3" * 64, "dog")])


def test_split_is_deterministic_disjoint_and_covers_everything(folder: Path) -> None:
    a = scan_image_folder(folder, seed=1)
    b = scan_image_folder(folder, seed=1)
    assert [r.split for r in a.records] == [r.split for r in b.records]
    parts = [{r.rel_path for r in a.split(name)} for name in ("train", "val", "test")]
    assert all(parts)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == {r.rel_path for r in a.records}


def test_split_fractions_and_seed() -> None:
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    splits = [assign_split(h, seed=0, val_fraction=0.2, test_fraction=0.1) for h in hashes]
    assert abs(splits.count("test") / 4000 - 0.1) < 0.02
    assert abs(splits.count("val") / 4000 - 0.2) < 0.03
    other = [assign_split(h, seed=1, val_fraction=0.2, test_fraction=0.1) for h in hashes]
    assert splits != other


def test_identical_files_land_in_the_same_split(folder: Path) -> None:
    for i, src in enumerate(sorted((folder / "cat").iterdir())[:4]):
        shutil.copy(src, folder / "dog" / f"dup{i}.jpg")
    scan = scan_image_folder(folder)
    by_hash: dict[str, set[str]] = {}
    for r in scan.records:
        by_hash.setdefault(r.sha256, set()).add(r.split)
    assert all(len(splits) == 1 for splits in by_hash.values())


def test_corrupt_truncated_and_non_image_files_are_excluded_and_reported(folder: Path) -> None:
    clean = scan_image_folder(folder)
    good = sorted((folder / "cat").iterdir())[0].read_bytes()
    (folder / "cat" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "cat" / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (folder / "dog" / "notes.txt").write_text("a note someone left here")
    (folder / "dog" / "empty.png").write_bytes(b"")
    (folder / "README.md").write_text("top-level files belong to no label")
    scan = scan_image_folder(folder)
    reasons = {r.rel_path: r.reason for r in scan.rejected}
    expected = {"cat/truncated.jpg", "cat/garbage.jpg", "dog/notes.txt", "dog/empty.png"}
    assert set(reasons) == expected
    assert "not an image" in reasons["dog/notes.txt"]
    assert "decoded" in reasons["cat/truncated.jpg"]
    assert scan.version == clean.version  # the data used is unchanged
    assert scan.summary()["rejected"]


def test_decode_rejects_truncated_jpeg_even_if_the_decoder_would_pad_it() -> None:
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", img)[1].tobytes()
    assert decode_image(data) is not None
    assert decode_image(data[:-40]) is None
    assert decode_image(b"") is None


def test_one_label_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "one"
    generate_dataset(root, n_per_class=3, size=32)
    shutil.rmtree(root / "dog")
    with pytest.raises(DatasetError, match="at least two"):
        scan_image_folder(root)
    with pytest.raises(DatasetError, match="does not exist"):
        scan_image_folder(tmp_path / "missing")


def _formula(bgr: npt.NDArray[np.uint8], spec: InputSpec) -> npt.NDArray[np.float64]:
    """InputSpec, written out independently: resize (bilinear), BGR->RGB, scale, mean/std, CHW."""
    x = cv2.resize(bgr, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    if spec.color_order == "RGB":
        x = x[:, :, ::-1]
    x = x.astype(np.float64) * spec.scale
    x = (x - np.array(spec.mean)) / np.array(spec.std)
    return np.asarray(x.transpose(2, 0, 1))


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_preprocessing_matches_the_inputspec_formula(order: str) -> None:
    spec = InputSpec(width=40, height=32, color_order=order)  # type: ignore[arg-type]
    bgr = np.random.default_rng(1).integers(0, 256, (75, 90, 3), dtype=np.uint8)
    assert bgr.dtype == np.uint8
    x = preprocess(bgr, spec)
    assert x.dtype == np.float32 and x.shape == (3, 32, 40)
    np.testing.assert_allclose(x, _formula(bgr, spec), atol=1e-5)


def test_dataset_items_are_the_preprocessed_files(folder: Path) -> None:
    scan = scan_image_folder(folder)
    spec = InputSpec(width=36, height=36)
    ds = ImageDataset(scan.records, spec)
    x, y = ds[5]
    bgr = read_image(scan.records[5].path)
    np.testing.assert_allclose(x.numpy(), _formula(bgr, spec), atol=1e-5)
    assert y == scan.records[5].label_index


def test_augmentation_is_seeded_per_epoch_and_item(folder: Path) -> None:
    scan = scan_image_folder(folder)
    ds = ImageDataset(scan.records, InputSpec(width=32, height=32), augment=True, seed=7)
    ds.set_epoch(1)
    a1, b1 = ds[0][0], ds[0][0]
    ds.set_epoch(2)
    a2 = ds[0][0]
    assert np.array_equal(a1.numpy(), b1.numpy())
    assert not np.array_equal(a1.numpy(), a2.numpy())
    img = resize_to_input(read_image(scan.records[0].path), InputSpec(width=32, height=32))
    out = augment(img, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.uint8
