"""``parkwatch train`` (the command line over :func:`trainer.run_training`) and
``parkwatch register`` (a finished run's output folder, later).

The root CLI merges this app's commands into ``parkwatch``: keep their names distinct
from every other component's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import load_api_access, load_settings
from .errors import TrainerError
from .pipeline import run_training
from .result import TrainingResult

app = typer.Typer(help="Train, export and register a model.", no_args_is_help=True)


def summary_table(result: TrainingResult) -> Table:
    table = Table(title="parkwatch train", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    m = result.metrics
    table.add_row("dataset version", result.dataset_version)
    if result.rejected_files:
        table.add_row("rejected files", f"{len(result.rejected_files)} (see report.json)")
    table.add_row(
        "data validation",
        "; ".join(result.validation_warnings) or "no problems found",
    )
    table.add_row("test accuracy", f"{m['test_accuracy']:.3f}  (macro F1 {m['test_macro_f1']:.3f})")
    table.add_row("val accuracy", f"{m['val_accuracy']:.3f}")
    if "test_roc_auc" in m:
        table.add_row("test ROC-AUC", f"{m['test_roc_auc']:.4f}")
    table.add_row("temperature", f"{m['temperature']:.3f}")
    if "quality_gate_passed" in m:
        verdict = "passed" if m["quality_gate_passed"] else (
            "[red]failed[/red], kept by --allow-weak-model" if m.get("weak_model_allowed")
            else "failed")
        table.add_row("quality gate", f"{verdict}: always the majority label scores "
                      f"{m['test_majority_accuracy']:.3f} "
                      f"(p = {m['test_accuracy_p_vs_majority']:.2g})")
    gate = result.gate
    if gate is not None:
        table.add_row(
            "int8 vs fp32",
            f"accuracy {gate['int8_accuracy']:.3f} vs {gate['fp32_accuracy']:.3f}, latency x"
            f"{gate['latency_ratio']:.2f}, size x{gate['size_ratio']:.2f}",
        )
    table.add_row("primary artifact", f"{'int8' if result.int8_primary else 'fp32'}: "
                  f"{result.registration.primary_reason.split('. ')[0]}")
    table.add_row("parity max |diff|", f"{result.parity_max_abs_diff:.2e}")
    table.add_row("training speed", f"{result.train_images_per_s:.0f} images/s")
    table.add_row("model", str(result.model_path))
    table.add_row("registration", str(result.registration_path))
    table.add_row("report", f"{result.report_path}  {result.report_md_path or ''}")
    table.add_row(
        "registered version",
        f"{result.registration.model_name} v{result.registered_version}"
        if result.registered_version
        else "not registered (no --api-url; later: parkwatch register OUT_DIR)",
    )
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("stages", ", ".join(
        f"{r.name} {r.seconds:.1f} s" for r in result.stages if r.status == "ok"
    ))
    return table


@app.command("train")
def train(
    data: Path | None = typer.Option(None, "--data", help="ImageFolder: one sub-folder per label."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (model.onnx, reports)."),
    epochs: int | None = typer.Option(None, help="Maximum training epochs."),
    input_size: int | None = typer.Option(None, help="Square input size in pixels."),
    width_mult: float | None = typer.Option(None, help="Network width multiplier."),
    arch: str | None = typer.Option(
        None, "--arch", help="compact or small (PetNet from scratch), or lite0 (pretrained "
        "EfficientNet-Lite0: linear probe, then --finetune)."
    ),
    finetune: str | None = typer.Option(
        None, "--finetune", help="lite0: none (probe only), head, last_blocks or full."
    ),
    seed: int | None = typer.Option(None, help="Seed of split, weights and augmentation."),
    device: str | None = typer.Option(None, help="auto, cpu or cuda."),
    model_name: str | None = typer.Option(None, help="Registry name of the model."),
    parent_version: str | None = typer.Option(None, help="Version this one retrains (lineage)."),
    search: int | None = typer.Option(
        None, "--search", help="Hyper-parameter search: N trials, the best by validation."
    ),
    int8_budget: float | None = typer.Option(
        None, "--int8-budget", help="Max accuracy drop (points) for int8 to be primary."
    ),
    quantize: bool | None = typer.Option(
        None, "--quantize/--no-quantize", help="Build and gate an int8 model (default on)."
    ),
    regions: bool | None = typer.Option(
        None, "--regions/--no-regions", help="lite0: a model for the agent's regions mode "
        "(agent-shaped crops, an 'other' class, a calibrated animal confidence)."
    ),
    job_id: str | None = typer.Option(
        None, "--job-id", help="Control-plane job to report status and progress to."
    ),
    api_url: str | None = typer.Option(
        None, help="Control plane URL (else PARKWATCH_API_URL); checked before training, "
        "registered with after."
    ),
    token: str | None = typer.Option(None, help="API token (else PARKWATCH_API_TOKEN)."),
    allow_weak_model: bool | None = typer.Option(
        None, "--allow-weak-model", help="Write and register a model that fails the quality "
        "gate (no better than guessing, or below min_test_accuracy); its metrics record it."
    ),
    config: Path | None = typer.Option(None, "--config", help="Trainer settings (TOML)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train a classifier on an image folder, export ONNX, check it and register it."""
    console = setup_console()
    try:
        settings = load_settings(
            config,
            data_dir=data,
            out_dir=out,
            epochs=epochs,
            input_size=input_size,
            width_mult=width_mult,
            arch=arch,
            finetune=finetune,
            seed=seed,
            device=device,
            model_name=model_name,
            parent_version=parent_version,
            search_trials=search,
            int8_budget_points=int8_budget,
            quantize=quantize,
            regions=regions,
            job_id=job_id,
            api_url=api_url,
            api_token=token,
            allow_weak_model=allow_weak_model,
        )
        result = run_training(settings, console=console, show_progress=not quiet)
    except TrainerError as exc:
        exit_with(console, exc)
    Console().print(summary_table(result))


@app.command("register")
def register(
    out_dir: Path = typer.Argument(..., help="The --out folder of a `parkwatch train` run."),
    api_url: str | None = typer.Option(None, help="Control plane URL (else PARKWATCH_API_URL)."),
    token: str | None = typer.Option(None, help="API token (else PARKWATCH_API_TOKEN)."),
) -> None:
    """Register a trained model from its output folder (registration.json and its files);
    registering the same folder again reports the existing version."""
    from .register_folder import register_folder  # httpx: `parkwatch --help` stays light

    console = setup_console()
    try:
        done = register_folder(out_dir, load_api_access(api_url=api_url, api_token=token))
    except TrainerError as exc:
        exit_with(console, exc)
    what = "already registered as" if done.already else "registered"
    Console().print(f"{what} {done.model_name} version {done.version} ({done.control_plane})",
                    soft_wrap=True)


@app.command("recalibrate")
def recalibrate(
    out_dir: Path = typer.Argument(
        ..., help="The --out folder of a `parkwatch train --regions` run."),
    data: Path | None = typer.Option(None, help="The data folder (default: the run's)."),
    per_hour: float | None = typer.Option(
        None, help="False animals per camera-hour to allow (default: the run's setting)."),
    regions_per_hour: float | None = typer.Option(
        None, help="Non-animal regions a camera classifies an hour (default: the run's)."),
    crops: int | None = typer.Option(None, help="Held-out 'other' crops to calibrate on."),
) -> None:
    """Fit a regions model's temperature and animal confidence again on a trained folder,
    without retraining; register the result with `parkwatch register OUT_DIR`."""
    from .recalibrate import recalibrate as run  # onnxruntime: `parkwatch --help` stays light

    console = setup_console()
    try:
        figures = run(out_dir, data_dir=data, region_false_animals_per_hour=per_hour,
                      region_other_regions_per_hour=regions_per_hour,
                      region_calibration_crops=crops)
    except (TrainerError, OSError, ValueError) as exc:
        exit_with(console, TrainerError(str(exc).splitlines()[0]))
    table = Table(title="parkwatch recalibrate", show_header=False)
    for key, value in sorted(figures.items()):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)


def setup_console() -> Console:
    """Warnings (deprecations, weak models) to stderr; the console errors go to."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return Console(stderr=True)


def exit_with(console: Console, exc: Exception) -> NoReturn:
    """The one-line error and exit status 1 every trainer command ends a failure with."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(1) from None


__all__ = ["app", "exit_with", "setup_console", "summary_table"]
