"""``parkwatch data``: fetch over real HTTP (Range, drops, bad checksums, hostile tarballs)
and import of a local folder, through the root CLI, with real photos."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parkwatch_cli import app as root_app
from tests.conftest import free_port
from tests.sources_kit import (
    FileServer,
    evil_images_archive,
    file_server,
    image_folder,
    md5,
    oxford_archives,
)
from trainer.imagefolder import image_counts
from trainer.sources.oxford_pets import CHECKSUMS

runner = CliRunner()


def fetch(server_url: str, out: Path, *extra: str, env: dict[str, str] | None = None,
          ) -> tuple[int, str, float]:
    started = time.perf_counter()
    result = runner.invoke(root_app, ["data", "fetch", "oxford-pets", "--out", str(out),
                                      "--base-url", server_url, *extra], env=env)
    return result.exit_code, result.output, time.perf_counter() - started


@pytest.fixture
def server() -> FileServer:
    with file_server() as state:
        yield state  # type: ignore[misc]


def test_fetch_lays_out_cat_and_dog_with_the_licence(server: FileServer, tmp_path: Path) -> None:
    archives = oxford_archives()
    server.files.update(archives.files())
    out = tmp_path / "pets"
    code, output, _ = fetch(server.url, out, *archives.checksum_args())
    assert code == 0, output
    assert image_counts(out) == {"cat": archives.cats, "dog": archives.dogs}
    assert (out / "cat" / "Abyssinian_1.jpg").is_file()  # not in list.txt: capitalised = cat
    assert (out / "dog" / "beagle_1.jpg").is_file() and not (out / "dog" / "pug_98.jpg").exists()
    report = json.loads((out / "import-report.json").read_text())
    assert report["duplicates"] == 1
    assert [r["path"] for r in report["rejected"]] == ["dog/beagle_99.jpg"]
    licence = (out / "LICENSE.txt").read_text()
    assert "CC BY-SA 4.0" in licence and "Parkhi" in licence
    assert "robots.ox.ac.uk" in licence and "LICENSE.txt" in (out / "README.md").read_text()
    assert not (out / ".downloads").exists() and not (out / ".incoming").exists()
    assert "CC BY-SA 4.0" in output
    # A second run finds the folder complete: no request at all.
    seen = len(server.requests)
    code, output, _ = fetch(server.url, out, *archives.checksum_args())
    assert code == 0 and "nothing to do" in output and len(server.requests) == seen


def test_a_connection_dropped_mid_file_is_resumed_with_range(
    server: FileServer, tmp_path: Path
) -> None:
    archives = oxford_archives()
    server.files.update(archives.files())
    half = len(archives.images) // 2
    server.drop("images.tar.gz", after_bytes=half)
    code, output, _ = fetch(server.url, tmp_path / "pets", *archives.checksum_args())
    assert code == 0, output
    assert server.ranges("images.tar.gz") == [None, f"bytes={half}-"]
    assert image_counts(tmp_path / "pets")["cat"] == archives.cats


def test_a_run_cut_off_resumes_on_the_next_run(server: FileServer, tmp_path: Path) -> None:
    archives = oxford_archives()
    server.files.update(archives.files())
    third = len(archives.images) // 3
    server.drop("images.tar.gz", after_bytes=third)
    out = tmp_path / "pets"
    code, output, _ = fetch(server.url, out, *archives.checksum_args(),
                            env={"PARKWATCH_DATA_RETRIES": "0"})
    assert code == 1 and "interrupted" in output and "run the same command again" in output
    part = out / ".downloads" / "images.tar.gz.part"
    assert part.stat().st_size == third
    code, output, _ = fetch(server.url, out, *archives.checksum_args())
    assert code == 0, output
    assert server.ranges("images.tar.gz")[-1] == f"bytes={third}-"
    assert image_counts(out) == {"cat": archives.cats, "dog": archives.dogs}


def test_a_corrupted_download_is_refused_and_deleted(server: FileServer, tmp_path: Path) -> None:
    archives = oxford_archives()
    corrupted = bytearray(archives.images)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server.files.update({**archives.files(), "images.tar.gz": bytes(corrupted)})
    out = tmp_path / "pets"
    code, output, _ = fetch(server.url, out, *archives.checksum_args())
    assert code == 1 and "corrupt or not the expected file" in output
    assert md5(archives.images) in output and "Traceback" not in output
    assert not (out / ".downloads" / "images.tar.gz.part").exists()
    assert not (out / "cat").exists()


def test_the_pinned_checksums_are_the_default(server: FileServer, tmp_path: Path) -> None:
    """Without --checksum the upstream md5s (torchvision's) apply: a mirror's other files
    are refused."""
    assert CHECKSUMS == {"images.tar.gz": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
                         "annotations.tar.gz": "95a8c909bbe2e81eed6a22bccdf3f68f"}
    server.files.update(oxford_archives().files())
    code, output, _ = fetch(server.url, tmp_path / "pets")
    assert code == 1 and "expected 5c4f3ee8e5d25df40f4fd59a7f44e54c" in output


def test_a_tarball_climbing_out_with_dotdot_is_refused(server: FileServer, tmp_path: Path) -> None:
    archives = oxford_archives()
    evil = evil_images_archive()
    server.files.update({**archives.files(), "images.tar.gz": evil})
    out = tmp_path / "deep" / "pets"
    code, output, _ = fetch(server.url, out, f"--checksum=images.tar.gz={md5(evil)}",
                            f"--checksum=annotations.tar.gz={md5(archives.annotations)}")
    assert code == 1 and "unsafe member '../evil.jpg'" in output, output
    assert not list(tmp_path.rglob("evil.jpg"))
    assert not (out / "cat").exists() and not (out / ".incoming").exists()


def test_no_network_is_one_line_naming_the_mirror_fix(tmp_path: Path) -> None:
    code, output, seconds = fetch(f"http://127.0.0.1:{free_port()}", tmp_path / "pets")
    print(f"fetch, connection refused: {seconds:.2f} s: {output.strip()}")
    assert code == 1 and "cannot connect to 127.0.0.1" in output
    assert "--base-url" in output and len(output.strip().splitlines()) == 1


def test_a_missing_file_on_the_mirror_and_an_unknown_dataset(
    server: FileServer, tmp_path: Path
) -> None:
    code, output, _ = fetch(server.url, tmp_path / "pets")
    assert code == 1 and "answered 404" in output
    result = runner.invoke(root_app, ["data", "fetch", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "choose one of oxford-pets" in result.output


def test_import_checks_dedupes_and_reports(tmp_path: Path) -> None:
    src = image_folder(tmp_path / "src", per_class=5)
    cat = sorted((src / "cat").iterdir())[0]
    (src / "cat" / "zz-copy.jpg").write_bytes(cat.read_bytes())  # a copy: skipped
    (src / "dog" / "same-as-cat.jpg").write_bytes(cat.read_bytes())  # a conflict: rejected
    (src / "dog" / "notes.txt").write_text("not a photo")
    (src / "dog" / "cut.jpg").write_bytes(cat.read_bytes()[:1500])
    out = tmp_path / "out"
    result = runner.invoke(root_app, ["data", "import", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 duplicate(s) skipped, 3 rejected" in result.output
    assert image_counts(out) == {"cat": 5, "dog": 5}
    report = json.loads((out / "import-report.json").read_text())
    reasons = {r["path"]: r["reason"] for r in report["rejected"]}
    assert "label conflict" in reasons["dog/same-as-cat.jpg"]
    assert "cannot be decoded" in reasons["dog/cut.jpg"] and "dog/notes.txt" in reasons
    again = runner.invoke(root_app, ["data", "import", str(src), "--out", str(out)])
    assert again.exit_code == 0 and "nothing new" in again.output
    linked = runner.invoke(root_app, ["data", "import", str(src), "--out",
                                      str(tmp_path / "linked"), "--hardlink"])
    assert linked.exit_code == 0
    assert os.stat(tmp_path / "linked" / "cat" / cat.name).st_ino == cat.stat().st_ino


def test_import_of_a_folder_that_is_not_an_imagefolder(tmp_path: Path) -> None:
    loose = image_folder(tmp_path / "src", per_class=2) / "cat"
    result = runner.invoke(root_app, ["data", "import", str(loose), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not an ImageFolder" in result.output
    assert "lie directly in it" in result.output and "Traceback" not in result.output
    unwritable = tmp_path / "file"
    unwritable.write_text("")
    result = runner.invoke(root_app, ["data", "import", str(tmp_path / "src"), "--out",
                                      str(unwritable / "out")])
    assert result.exit_code == 1 and "cannot create the output folder" in result.output
