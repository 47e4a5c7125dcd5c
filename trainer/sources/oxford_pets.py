"""The Oxford-IIIT Pet data set as a ``cat``/``dog`` ImageFolder.

About 7,400 photos of 37 breeds (12 of cats, 25 of dogs) by O. M. Parkhi, A. Vedaldi,
A. Zisserman and C. V. Jawahar (Visual Geometry Group, University of Oxford),
licensed CC BY-SA 4.0; the copyright of each image stays with its owner. The URLs and
md5 checksums are the ones torchvision's ``OxfordIIITPet`` pins. A photo's species is
the third column of ``annotations/list.txt`` (1 cat, 2 dog); a photo that file does not
list falls back to the data set's naming rule (cat breeds are capitalised,
``Abyssinian_1.jpg``; dog breeds are not, ``beagle_1.jpg``).

Steps: download both archives into ``DIR/.downloads`` (resumable, verified), read the
species list, extract the photos into ``DIR/.incoming/<species>/`` (every member
checked), import them into ``DIR`` (decoded once, duplicates and rejects reported),
write ``LICENSE.txt`` and ``README.md`` beside them, then delete the archives unless
asked to keep them. A second run over a finished folder does nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import SourceError
from .archive import extract_selected, read_member
from .download import Downloaded, OnProgress, download
from .importer import ImportReport, import_image_folder

NAME = "oxford-pets"
BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data"
CHECKSUMS = {  # md5, as torchvision.datasets.OxfordIIITPet pins them
    "images.tar.gz": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
    "annotations.tar.gz": "95a8c909bbe2e81eed6a22bccdf3f68f",
}
LIST_MEMBER = "annotations/list.txt"
SPECIES = {"1": "cat", "2": "dog"}
MARKER = "SOURCE.json"

LICENSE_TEXT = """\
The photos in cat/ and dog/ come from the Oxford-IIIT Pet Dataset
https://www.robots.ox.ac.uk/~vgg/data/pets/

O. M. Parkhi, A. Vedaldi, A. Zisserman and C. V. Jawahar, "Cats and Dogs",
IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2012.

Licence: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)
https://creativecommons.org/licenses/by-sa/4.0/
The copyright of each image remains with its original owner.

Changes: the photos were sorted into cat/ and dog/ by the species column of the data
set's annotations/list.txt; files that do not decode and byte-identical duplicates were
left out (import-report.json lists them). The photos themselves are unchanged. Share
what you derive from them under the same licence.
"""


@dataclass(frozen=True)
class Fetched:
    out: Path
    downloads: tuple[Downloaded, ...]
    imported: ImportReport | None  # None: the folder was complete already

    def counts(self) -> dict[str, int]:
        marker = json.loads((self.out / MARKER).read_text())
        return dict(marker["images"])


def species_by_image(list_txt: str) -> dict[str, str]:
    """Image stem -> ``cat``/``dog`` from list.txt (``#`` lines are comments)."""
    found: dict[str, str] = {}
    for line in list_txt.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#") and fields[2] in SPECIES:
            found[fields[0]] = SPECIES[fields[2]]
    return found


def species_of(stem: str, listed: Mapping[str, str]) -> str:
    """The species of ``stem``: from list.txt, else the capitalisation of its breed name."""
    return listed.get(stem) or ("cat" if stem[:1].isupper() else "dog")


def image_target(listed: Mapping[str, str]) -> Callable[[str], str | None]:
    """``images/Abyssinian_1.jpg`` -> ``cat/Abyssinian_1.jpg``; None for anything else."""

    def target(member: str) -> str | None:
        path = PurePosixPath(member)
        if len(path.parts) != 2 or path.parts[0] != "images" or path.suffix.lower() != ".jpg":
            return None  # the archive's few .mat files, folders
        return f"{species_of(path.stem, listed)}/{path.name}"

    return target


def _is_complete(out: Path, checksums: Mapping[str, str]) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("files") == dict(checksums) and all(
        (out / label).is_dir() for label in marker.get("images", {}))


def _write_notes(out: Path, base_url: str, checksums: Mapping[str, str],
                 report: ImportReport) -> None:
    counts = dict(sorted(report.imported.items()))
    (out / "LICENSE.txt").write_text(LICENSE_TEXT)
    (out / "README.md").write_text(
        "# Oxford-IIIT Pet photos, as a cat/dog ImageFolder\n\n"
        f"Fetched by `parkwatch data fetch {NAME}` from {base_url} "
        f"({', '.join(f'{k} md5 {v}' for k, v in checksums.items())}).\n\n"
        f"{', '.join(f'{n} {label}' for label, n in counts.items())} photos; "
        f"{report.duplicates} duplicates and {len(report.rejected)} undecodable files left "
        "out (import-report.json).\n\n"
        "Source, authors and licence (CC BY-SA 4.0): LICENSE.txt.\n"
    )
    (out / MARKER).write_text(json.dumps(
        {"dataset": NAME, "base_url": base_url, "files": dict(checksums), "images": counts},
        indent=2) + "\n")


def fetch_oxford_pets(
    out: Path,
    *,
    base_url: str = BASE_URL,
    checksums: Mapping[str, str] = CHECKSUMS,
    retries: int = 3,
    timeout_s: float = 30.0,
    keep_archives: bool = False,
    on_bytes: Callable[[str], OnProgress] | None = None,
    on_file: Callable[[], None] | None = None,
) -> Fetched:
    """Fetch the data set into ``out`` as ``out/cat``, ``out/dog`` (see the module doc).

    ``on_bytes(file name)`` gives a download's progress callback; ``on_file`` ticks per
    photo imported.
    """
    if _is_complete(out, checksums):
        return Fetched(out, (), None)
    downloads_dir, staging = out / ".downloads", out / ".incoming"
    try:
        downloads_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot write to {out} ({exc.strerror or exc}): pass a writable "
                          "folder with --out") from None
    got = tuple(
        download(f"{base_url.rstrip('/')}/{name}", downloads_dir / name, md5, retries=retries,
                 timeout_s=timeout_s, on_progress=on_bytes(name) if on_bytes else None)
        for name, md5 in checksums.items()
    )
    archives = {d.path.name: d.path for d in got}
    listed = species_by_image(read_member(archives["annotations.tar.gz"], LIST_MEMBER)
                              .decode("utf-8", "replace"))
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if not extract_selected(archives["images.tar.gz"], staging, image_target(listed)):
            raise SourceError("images.tar.gz holds no images/*.jpg: it is not the Oxford-IIIT "
                              "Pet archive (check --base-url and the checksums)")
        report = import_image_folder(staging, out, mode="move", on_file=on_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_notes(out, base_url, checksums, report)
    if not keep_archives:
        shutil.rmtree(downloads_dir, ignore_errors=True)
    return Fetched(out, got, report)


__all__ = ["BASE_URL", "CHECKSUMS", "NAME", "Fetched", "fetch_oxford_pets", "image_target",
           "species_by_image", "species_of"]
