"""``run_training``: the trainer's one public entry point, from image folder to registered version.

The run is the list of named stages in ``trainer/stages/__init__.py`` (scan, split,
train, export, quantize, evaluate, profile, shifts, write, register), run and timed
by ``trainer.runner``. The control plane runs this as a job; ``parkwatch train`` is a
thin CLI over it.
"""

from __future__ import annotations

import time

from rich.console import Console

from .config import TrainerSettings, resolve_token
from .result import TrainingResult
from .runner import RunContext, run_stages


def run_training(
    settings: TrainerSettings, console: Console | None = None, show_progress: bool = True
) -> TrainingResult:
    """Train, export, quantize, check, profile, write and (with ``api_url``) register.

    With ``settings.job_id`` the run reports its status and progress to that
    control-plane job, ending in succeeded (with the registered version) or failed.
    """
    # Imported here, not at the top: the stages pull in torch, ONNX Runtime and OpenCV
    # (seconds of start-up), and `import trainer` must stay light for `parkwatch --help`
    # and every other command that never trains.
    from .jobs import JobReporter
    from .stages import STAGES, training_result

    console = console or Console(stderr=True, quiet=not show_progress)
    with JobReporter(settings.api_url, resolve_token(settings), settings.job_id) as job:
        job.start()
        started = time.perf_counter()
        settings.out_dir.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(
            settings=settings,
            console=console,
            show_progress=show_progress,
            on_epoch=lambda e: job.epoch(e.epoch, settings.planned_epochs, e.val_accuracy),
        )
        ctx = run_stages(STAGES, ctx, on_done=job.stage_done)
        result = training_result(ctx, time.perf_counter() - started)
        job.succeeded(
            result.registered_version,
            f"test accuracy {result.metrics['test_accuracy']:.4f}; primary "
            f"{'int8' if result.int8_primary else 'fp32'}",
        )
    return result


__all__ = ["TrainingResult", "resolve_token", "run_training"]
