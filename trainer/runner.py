"""Named stages and the runner that times them: a training run is a list of stages.

A :class:`Stage` is a name and a function ``RunContext -> output``. The output is
a frozen dataclass that the context keeps by its type, so a later stage asks for
what it needs (``ctx[Exported]``) and a test runs one stage on a context holding
only its inputs. The runner times every stage and keeps one :class:`StageRecord`
(name, seconds, status, the output's key figures) per stage: the one place that
report.json (``stages``, ``timings_s``), report.md, the console and the
control-plane job read from. Adding a stage is adding one function to the list
(``trainer/stages/__init__.py``).

This module imports neither torch nor numpy: ``import trainer`` stays light.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from rich.console import Console
from rich.text import Text

from .config import TrainerSettings
from .errors import TrainerError

if TYPE_CHECKING:
    from .train import EpochStats

log = logging.getLogger(__name__)

Figure = float | int | str
Status = Literal["ok", "skipped", "failed"]


class StageOutput(Protocol):
    """What a stage returns: a frozen dataclass with the figures worth reporting."""

    def figures(self) -> Mapping[str, Figure]: ...


@runtime_checkable
class EvaluationOutput(Protocol):
    """An output that adds sections to report.json's ``evaluation`` (test, slices, shifts...).

    The write stage collects every such output in stage order, so a new evaluation
    stage reaches the report without the write stage knowing it.
    """

    def evaluation_sections(self) -> Mapping[str, Any]: ...


Out = TypeVar("Out")


def _always(settings: TrainerSettings) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One named step of a run; ``when`` decides from the settings whether it runs."""

    name: str
    run: Callable[[RunContext], StageOutput]
    when: Callable[[TrainerSettings], bool] = _always
    skip_reason: str = ""


@dataclass(frozen=True)
class StageRecord:
    """How one stage went: the runner's record, and the report's."""

    name: str
    status: Status
    seconds: float
    figures: Mapping[str, Figure] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": self.seconds,
                "figures": dict(self.figures)}


@dataclass(frozen=True)
class RunContext:
    """Settings, console and hooks of a run, plus the outputs of the stages run so far."""

    settings: TrainerSettings
    console: Console = field(default_factory=lambda: Console(stderr=True, quiet=True))
    show_progress: bool = False
    on_epoch: Callable[[EpochStats], None] | None = None
    outputs: Mapping[type[Any], StageOutput] = field(default_factory=dict)
    records: tuple[StageRecord, ...] = ()

    def __getitem__(self, kind: type[Out]) -> Out:
        value = self.outputs.get(kind)
        if not isinstance(value, kind):
            raise TrainerError(
                f"this stage needs {kind.__name__}, which no earlier stage of the run "
                "produced: run the stage that makes it first"
            )
        return value

    def get(self, kind: type[Out]) -> Out | None:
        """The output of type ``kind``, or None where its stage was skipped or not run."""
        value = self.outputs.get(kind)
        return value if isinstance(value, kind) else None

    def with_outputs(self, *outputs: StageOutput) -> RunContext:
        return replace(self, outputs={**self.outputs, **{type(o): o for o in outputs}})

    def out_path(self, name: str) -> Path:
        """``name`` inside the run's output folder, which is created on first use."""
        self.settings.out_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.out_dir / name

    def write_json(self, name: str, data: Any) -> bytes:
        """Write ``data`` as JSON to ``name`` in the output folder, atomically; return the bytes."""
        path = self.out_path(name)
        raw = (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(raw)
        tmp.replace(path)
        return raw

    def timings(self) -> dict[str, float]:
        """Seconds per stage that ran (report.json's ``timings_s``)."""
        return {r.name: r.seconds for r in self.records if r.status == "ok"}


def _format_figure(value: Figure) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show_record(console: Console, record: StageRecord, position: str) -> None:
    """One console line per stage: mark, name, seconds and key figures."""
    mark, style = {"ok": ("✓", "green"), "skipped": ("-", "dim"), "failed": ("✗", "red")}[
        record.status
    ]
    line = Text.assemble((f"{mark} ", style), (f"{position} {record.name:<9}", "bold"),
                         f" {record.seconds:7.2f} s  ")
    line.append("  ".join(f"{k} {_format_figure(v)}" for k, v in record.figures.items()),
                style="dim" if record.status == "skipped" else "")
    console.print(line, soft_wrap=True)


def position(number: int, total: int) -> str:
    """``[ 3/10]``: where a stage stands in its run."""
    return f"[{number:>{len(str(total))}}/{total}]"


def run_stages(
    stages: Sequence[Stage],
    ctx: RunContext,
    on_done: Callable[[str], None] | None = None,
) -> RunContext:
    """Run ``stages`` in order on ``ctx``; return the context with their outputs and records.

    A stage whose ``when`` is false is recorded as skipped; one that raises is recorded
    and shown as failed, and its exception propagates unchanged. ``on_done(name)``
    follows each stage that ran (the control-plane job's progress).
    """
    for number, stage in enumerate(stages, 1):
        where = position(number, len(stages))
        if not stage.when(ctx.settings):
            record = StageRecord(stage.name, "skipped", 0.0, {"reason": stage.skip_reason})
            ctx = replace(ctx, records=(*ctx.records, record))
            show_record(ctx.console, record, where)
            continue
        started = time.perf_counter()
        try:
            output = stage.run(ctx)
        except BaseException:
            seconds = round(time.perf_counter() - started, 3)
            show_record(ctx.console, StageRecord(stage.name, "failed", seconds), where)
            log.info("trainer stage %s failed after %.1fs", stage.name, seconds)
            raise
        record = StageRecord(
            stage.name, "ok", round(time.perf_counter() - started, 3), dict(output.figures())
        )
        ctx = replace(ctx.with_outputs(output), records=(*ctx.records, record))
        log.info("trainer stage %s done in %.1fs", stage.name, record.seconds)
        show_record(ctx.console, record, where)
        if on_done is not None:
            on_done(stage.name)
    return ctx


__all__ = [
    "EvaluationOutput", "Figure", "RunContext", "Stage", "StageOutput", "StageRecord",
    "position", "run_stages", "show_record",
]
