"""Test kit for ``parkwatch data``: a Range-capable file server and Oxford-like archives.

``file_server()`` serves named files over real HTTP on a free port with ``Range``
support (``http.server`` has none), records every request, and can drop the
connection partway through a file, as a flaky link would. ``oxford_archives()`` builds
a small ``images.tar.gz`` / ``annotations.tar.gz`` pair laid out like the real data
set, from real photos, with the oddities the real one has (non-JPEG members, a photo
list.txt does not name) plus a truncated photo and a duplicate.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.conftest import http_server

PHOTOS = Path("/work/shared/data/cats_and_dogs")
CAT_BREEDS = ("Abyssinian", "Bengal", "Persian")
DOG_BREEDS = ("beagle", "pug", "samoyed")


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    # name -> bytes after which the next responses for it close the connection, and how
    # many responses still do so
    drops: dict[str, tuple[int, int]] = field(default_factory=dict)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range, status
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop(self, name: str, after_bytes: int, times: int = 1) -> None:
        self.drops[name] = (after_bytes, times)

    def ranges(self, name: str) -> list[str | None]:
        return [rng for path, rng, _ in self.requests if path == f"/{name}"]


@contextmanager
def file_server() -> Iterator[FileServer]:
    """Serve ``state.files`` at ``/<name>`` until the block ends."""
    state = FileServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _head(self, status: int, length: int, headers: dict[str, str]) -> None:
            state.requests.append((self.path, self.headers.get("Range"), status))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def do_GET(self) -> None:
            data = state.files.get(self.path.lstrip("/"))
            if data is None:
                self._head(404, 0, {})
                return
            start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
            rng = self.headers.get("Range")
            if rng and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
                start = int(m[1])
                if start >= len(data):
                    self._head(416, 0, {"Content-Range": f"bytes */{len(data)}"})
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            self._head(status, len(body), headers)
            after, times = state.drops.get(self.path.lstrip("/"), (0, 0))
            if times > 0 and start < after:
                state.drops[self.path.lstrip("/")] = (after, times - 1)
                self.wfile.write(body[: after - start])
                self.wfile.flush()
                self.close_connection = True  # mid-file: the client sees a short body
                return
            self.wfile.write(body)

    with http_server(Handler) as port:
        state.port = port
        yield state


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class OxfordArchives:
    images: bytes
    annotations: bytes
    cats: int  # decodable, distinct cat photos in images.tar.gz
    dogs: int

    def files(self) -> dict[str, bytes]:
        return {"images.tar.gz": self.images, "annotations.tar.gz": self.annotations}

    def checksum_args(self) -> list[str]:
        return [f"--checksum={name}={md5(data)}" for name, data in self.files().items()]


def oxford_archives(per_breed: int = 2) -> OxfordArchives:
    """Oxford-like archives from real photos: ``per_breed`` photos of 3 cat and 3 dog
    breeds, the first cat listed nowhere (the capitalisation rule names it), a
    ``.mat`` member, a truncated photo and a byte-identical duplicate."""
    cats = sorted((PHOTOS / "cat").iterdir())
    dogs = sorted((PHOTOS / "dog").iterdir())
    images: dict[str, bytes] = {}
    listed = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog"]
    for species, breeds, photos in ((1, CAT_BREEDS, cats), (2, DOG_BREEDS, dogs)):
        for b, breed in enumerate(breeds):
            for i in range(1, per_breed + 1):
                stem = f"{breed}_{i}"
                images[f"images/{stem}.jpg"] = photos[b * per_breed + i - 1].read_bytes()
                if not (species == 1 and b == 0 and i == 1):
                    listed.append(f"{stem} {b + 1} {species} {i}")
    images["images/Abyssinian_100.mat"] = b"MATLAB 5.0 MAT-file"
    images["images/beagle_99.jpg"] = dogs[-1].read_bytes()[:2000]  # truncated: rejected
    images["images/pug_98.jpg"] = images["images/pug_1.jpg"]  # duplicate: skipped
    annotations = {"annotations/list.txt": ("\n".join(listed) + "\n").encode(),
                   "annotations/trainval.txt": b""}
    n = len(CAT_BREEDS) * per_breed
    return OxfordArchives(_tar_gz(images), _tar_gz(annotations), cats=n, dogs=n)


def evil_images_archive() -> bytes:
    """An images.tar.gz whose second member climbs out of the destination."""
    photo = next((PHOTOS / "cat").iterdir()).read_bytes()
    return _tar_gz({"images/Abyssinian_1.jpg": photo, "../evil.jpg": photo})


def image_folder(root: Path, per_class: int, offset: int = 0) -> Path:
    """An ImageFolder of real photos: ``per_class`` cats and dogs from ``offset`` on."""
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for src in sorted((PHOTOS / label).iterdir())[offset: offset + per_class]:
            shutil.copyfile(src, root / label / src.name)
    return root


__all__ = ["FileServer", "OxfordArchives", "evil_images_archive", "file_server",
           "image_folder", "md5", "oxford_archives"]
