"""``run_training``: the trainer's one public entry point, from image folder to registered version.

The run is the pre-flight checks (``trainer.preflight``), then the list of named stages
in ``trainer/stages/__init__.py`` (scan, split, train, export, quantize, evaluate,
judge, profile, shifts, write, register), run and timed by ``trainer.runner``. The
control plane runs this as a job; ``parkwatch train`` is a thin CLI over it.
"""

from __future__ import annotations

import time

from rich.console import Console

from .config import TrainerSettings, resolve_token
from .preflight import preflight
from .result import TrainingResult
from .runner import RunContext, position, run_stages, show_record


def run_training(
    settings: TrainerSettings, console: Console | None = None, show_progress: bool = True
) -> TrainingResult:
    """Check, train, export, quantize, evaluate, judge, profile, write and (with
    ``api_url``) register.

    The pre-flight checks (``trainer.preflight``: data folder, output folder, control
    plane) run first, before torch is even imported, so a bad input fails in a second.
    With ``settings.job_id`` the run reports its status and progress to that
    control-plane job, ending in succeeded (with the registered version) or failed.
    """
    from .jobs import JobReporter

    console = console or Console(stderr=True, quiet=not show_progress)
    with JobReporter(settings.api_url, resolve_token(settings), settings.job_id) as job:
        job.start()
        started = time.perf_counter()
        checked = preflight(settings)
        # Imported here, not at the top: the stages pull in torch, ONNX Runtime and OpenCV
        # (seconds of start-up), and `import trainer` must stay light for `parkwatch --help`
        # and every other command that never trains.
        from .stages import STAGES, training_result

        show_record(console, checked, position(0, len(STAGES)))
        ctx = RunContext(
            settings=settings,
            console=console,
            show_progress=show_progress,
            on_epoch=lambda e: job.epoch(e.epoch, settings.planned_epochs, e.val_accuracy),
            records=(checked,),
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
