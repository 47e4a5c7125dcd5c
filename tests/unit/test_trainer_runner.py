"""The stage runner (pure logic): order, typed outputs, skips, failures, records, progress.

The stages here are small stand-ins; the real ones run in
tests/integration/test_trainer_stages.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from trainer import TrainerError, load_settings
from trainer.runner import RunContext, Stage, StageRecord, run_stages


@dataclass(frozen=True)
class Counted:
    n: int

    def figures(self) -> dict[str, float | int | str]:
        return {"n": self.n}


@dataclass(frozen=True)
class Doubled:
    n: int
    saw_counted: bool

    def figures(self) -> dict[str, float | int | str]:
        return {"n": self.n, "note": "ok"}


def count(ctx: RunContext) -> Counted:
    return Counted(3)


def double(ctx: RunContext) -> Doubled:
    counted = ctx.get(Counted)
    return Doubled(2 * counted.n if counted else 0, counted is not None)


def broken(ctx: RunContext) -> Counted:
    raise TrainerError("the data folder is empty: add images")


def _ctx(tmp_path: Path, **settings: object) -> tuple[RunContext, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    s = load_settings(None, data_dir=tmp_path, out_dir=tmp_path / "out", **settings)
    return RunContext(settings=s, console=console), out


def test_stages_run_in_order_and_read_earlier_outputs_by_type(tmp_path: Path) -> None:
    ctx, console = _ctx(tmp_path)
    done: list[str] = []
    ctx = run_stages([Stage("count", count), Stage("double", double)], ctx, done.append)
    assert ctx[Doubled] == Doubled(6, True)
    assert [r.name for r in ctx.records] == ["count", "double"] == done
    assert [r.status for r in ctx.records] == ["ok", "ok"]
    assert ctx.records[1].figures == {"n": 6, "note": "ok"}
    assert all(r.seconds >= 0 for r in ctx.records)
    assert list(ctx.timings()) == ["count", "double"]
    lines = console.getvalue().splitlines()
    assert len(lines) == 2 and "count" in lines[0] and "n 6" in lines[1] and "note ok" in lines[1]


def test_a_stage_whose_condition_is_false_is_recorded_as_skipped(tmp_path: Path) -> None:
    ctx, console = _ctx(tmp_path, quantize=False)
    done: list[str] = []
    stages = [
        Stage("count", count, when=lambda s: s.quantize, skip_reason="quantize = false"),
        Stage("double", double),
    ]
    ctx = run_stages(stages, ctx, done.append)
    assert ctx.get(Counted) is None
    assert ctx[Doubled] == Doubled(0, False)
    assert ctx.records[0] == StageRecord("count", "skipped", 0.0, {"reason": "quantize = false"})
    assert done == ["double"]  # the job hears only of stages that ran
    assert ctx.timings().keys() == {"double"}
    assert "reason quantize = false" in console.getvalue()


def test_a_failing_stage_is_shown_and_its_error_propagates_unchanged(tmp_path: Path) -> None:
    ctx, console = _ctx(tmp_path)
    done: list[str] = []
    with pytest.raises(TrainerError, match="the data folder is empty: add images"):
        run_stages([Stage("count", count), Stage("scan", broken), Stage("double", double)],
                   ctx, done.append)
    assert done == ["count"]
    lines = console.getvalue().splitlines()
    assert len(lines) == 2 and "✗" in lines[1] and "scan" in lines[1]


def test_a_missing_input_names_the_output_it_needs(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(TrainerError, match="needs Counted"):
        ctx[Counted]
    assert ctx.with_outputs(Counted(1))[Counted] == Counted(1)
    assert ctx.outputs == {}  # the context is frozen: with_outputs returns a new one


def test_write_json_creates_the_folder_and_returns_the_bytes_written(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    raw = ctx.write_json("x.json", {"b": 1, "a": [1.5]})
    path = tmp_path / "out" / "x.json"
    assert path.read_bytes() == raw
    assert json.loads(raw) == {"a": [1.5], "b": 1}
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_importing_the_trainer_does_not_import_torch_or_numpy() -> None:
    """The CLI and the control plane's job launcher import trainer; a run imports the rest."""
    code = ("import sys, trainer, trainer.cli, trainer.pipeline, trainer.runner; "
            "print(' '.join(sys.modules))")
    loaded = {m.split(".")[0] for m in subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()}
    assert not loaded & {"torch", "numpy", "cv2", "onnxruntime", "onnx", "httpx"}
