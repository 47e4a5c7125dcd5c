"""``parkwatch data``: get photos to train on.

``fetch oxford-pets --out DIR`` downloads a public, redistributable pet data set and
lays it out as an ImageFolder; ``import SRC --out DIR`` brings in any local ImageFolder.
The source URL and the checksums can be overridden (a mirror, an offline copy):
``--base-url`` / ``PARKWATCH_DATA_BASE_URL`` and ``--checksum FILE=MD5`` /
``PARKWATCH_DATA_CHECKSUMS`` (JSON); the pinned upstream checksums are the default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..cli import exit_with, setup_console
from ..errors import TrainerError

app = typer.Typer(help="Get photos to train on: fetch a public data set, import a folder.",
                  no_args_is_help=True)
DATASETS = ("oxford-pets",)


class SourceSettings(BaseSettings):
    """Where ``fetch`` downloads from; flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="PARKWATCH_DATA_", extra="forbid")

    base_url: str | None = Field(None, description="Mirror of the data set's files; unset: "
                                 "the official site.")
    checksums: dict[str, str] = Field(
        default_factory=dict, description="File name -> md5, replacing the pinned ones (a "
        "mirror of other files; the tests' small archives).")
    retries: int = Field(3, ge=0, le=20, description="Resumes within one run after a "
                         "dropped connection.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds without data before a "
                             "connection counts as dropped.")


def _fail(console: Console, exc: Exception) -> NoReturn:
    exit_with(console, exc)


class _Amount(ProgressColumn):
    """Bytes for a download, files for an import."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            return DownloadColumn().render(task)
        return MofNCompleteColumn().render(task)


def _checksums(items: list[str], console: Console) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, md5 = item.partition("=")
        if not sep or len(md5) != 32 or not all(c in "0123456789abcdef" for c in md5.lower()):
            _fail(console, ValueError(f"--checksum {item!r}: give FILE=MD5 (32 hex digits), "
                                      "e.g. images.tar.gz=5c4f3ee8e5d25df40f4fd59a7f44e54c"))
        out[name] = md5.lower()
    return out


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), _Amount(),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as progress:  # no bars in logs and pipes
        yield progress


def _byte_task(progress: Progress) -> Callable[[str], Callable[[int, int | None], None]]:
    def for_file(name: str) -> Callable[[int, int | None], None]:
        task = progress.add_task(f"download {name}", total=None, unit="bytes")

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        return update

    return for_file


class _FileBar:
    """A per-file bar that appears with the first file (after the downloads)."""

    def __init__(self, progress: Progress, description: str) -> None:
        self.progress, self.description = progress, description
        self.task: TaskID | None = None

    def total(self, n: int | None) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.description, total=n)

    def tick(self) -> None:
        self.total(None)
        assert self.task is not None
        self.progress.advance(self.task)


@app.command("fetch")
def fetch(
    dataset: str = typer.Argument(..., help=f"The data set: {', '.join(DATASETS)}."),
    out: Path = typer.Option(..., "--out", help="Folder to lay the ImageFolder out in."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Mirror URL of the data set's files (else "
        "PARKWATCH_DATA_BASE_URL, else the official site)."),
    checksum: list[str] = typer.Option(
        [], "--checksum", help="FILE=MD5 replacing a pinned checksum (repeatable)."),
    keep_archives: bool = typer.Option(
        False, "--keep-archives", help="Keep the downloaded archives in DIR/.downloads."),
) -> None:
    """Download a public pet data set, verify it and lay it out as DIR/cat, DIR/dog."""
    from .oxford_pets import BASE_URL, CHECKSUMS, fetch_oxford_pets

    console = setup_console()
    if dataset not in DATASETS:
        _fail(console, ValueError(f"unknown data set {dataset!r}: choose one of "
                                  f"{', '.join(DATASETS)}"))
    try:
        settings = SourceSettings(base_url=base_url) if base_url else SourceSettings()
    except ValidationError as exc:
        _fail(console, ValueError(f"invalid PARKWATCH_DATA_* setting: {exc.errors()[0]['msg']}"))
    sums = {**CHECKSUMS, **settings.checksums, **_checksums(checksum, console)}
    unknown = sorted(set(sums) - set(CHECKSUMS))
    if unknown:
        _fail(console, ValueError(f"no file {unknown} in {dataset}: its files are "
                                  f"{', '.join(CHECKSUMS)}"))
    try:
        with _progress(console) as progress:
            bar = _FileBar(progress, "import photos")
            done = fetch_oxford_pets(
                out, base_url=settings.base_url or BASE_URL, checksums=sums,
                retries=settings.retries, timeout_s=settings.timeout_s,
                keep_archives=keep_archives, on_bytes=_byte_task(progress), on_file=bar.tick)
    except TrainerError as exc:
        _fail(console, exc)
    counts = ", ".join(f"{n} {label}" for label, n in done.counts().items())
    if done.imported is None:
        Console().print(f"{out} already holds {dataset} ({counts}): nothing to do")
        return
    Console().print(f"{out}: {counts} photos ({done.imported.duplicates} duplicates, "
                    f"{len(done.imported.rejected)} rejected: {out}/import-report.json); "
                    f"licence CC BY-SA 4.0, see {out}/LICENSE.txt")


@app.command("import")
def import_folder(
    source: Path = typer.Argument(..., help="An ImageFolder: one sub-folder of images per label."),
    out: Path = typer.Option(..., "--out", help="Folder to import into (created if needed)."),
    hardlink: bool = typer.Option(
        False, "--hardlink", help="Hard-link instead of copying (same file system only)."),
) -> None:
    """Import a local ImageFolder: decode-check every image, drop duplicates by content,
    report rejects."""
    from .importer import import_image_folder

    console = setup_console()
    try:
        with _progress(console) as progress:
            bar = _FileBar(progress, "import photos")
            report = import_image_folder(
                source, out, mode="hardlink" if hardlink else "copy", on_file=bar.tick,
                on_total=bar.total)
    except TrainerError as exc:
        _fail(console, exc)
    counts = ", ".join(f"{n} {label}" for label, n in sorted(report.imported.items()))
    Console().print(f"imported into {out}: {counts or 'nothing new'}; {report.duplicates} "
                    f"duplicate(s) skipped, {len(report.rejected)} rejected")
    for rejected in report.rejected[:10]:
        Console().print(f"  rejected {rejected.path}: {rejected.reason}", soft_wrap=True)
    if len(report.rejected) > 10:
        Console().print(f"  ... and {len(report.rejected) - 10} more: {out}/import-report.json")


__all__ = ["SourceSettings", "app"]
