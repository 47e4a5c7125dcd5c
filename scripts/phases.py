"""The demo's phases: a timeline of what ran when, waits that say what they expected and
which log to read when it does not come, and the one error a phase raises."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from scripts.loop import wait_until

T = TypeVar("T")
console = Console()


class PhaseError(RuntimeError):
    """A phase did not reach what it waits for; the message names the log to read."""


@dataclass
class Timeline:
    """When each phase began and how long it took: the summary at the end, and
    ``timeline.json`` (``save``) for whoever checks the story against the store."""

    phases: list[tuple[str, float]] = field(default_factory=list)
    started: dict[str, datetime] = field(default_factory=dict)

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        console.rule(f"[bold cyan]{title}")
        start = time.monotonic()
        self.started[title] = datetime.now(UTC)
        try:
            yield
        finally:
            self.phases.append((title, time.monotonic() - start))
            console.print(f"[dim]({time.monotonic() - start:.0f} s)")

    def save(self, path: Path, **facts: Any) -> None:
        path.write_text(json.dumps({
            "phases": [{"title": t, "started_at": self.started[t].isoformat(), "seconds": s}
                       for t, s in self.phases],
            **facts,
        }, indent=2))


def wait_for(
    check: Callable[[], T | None], timeout: float, expected: str, log: Path, status: str
) -> T:
    """Poll ``check`` under a spinner; on timeout raise naming what and where to look."""
    with console.status(status) as spinner:
        try:
            return wait_until(check, timeout, expected, interval=2, on_wait=lambda left: (
                spinner.update(f"{status} [dim](up to {left:.0f} s more)")))
        except TimeoutError as exc:
            raise PhaseError(f"expected {expected}, but it did not happen: {exc}; "
                             f"look at {log}") from None
