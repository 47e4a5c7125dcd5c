"""Commands that close the loop: ``drift run``, ``samples`` (labelling) and ``worker``.

``drift run`` and ``samples`` talk to the HTTP API like every operator command;
``worker`` is a local process beside ``serve`` that acts on the store directly.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly
from .cli_fleet import drift_app

samples_app = typer.Typer(no_args_is_help=True, help="Uploaded samples: list, label, reject.")


@drift_app.command("run")
@fails_cleanly
def drift_run(
    range_minutes: int | None = typer.Option(
        None, "--range-minutes", min=1, help="Sliding range ending now (default: config)."
    ),
    release: str | None = typer.Option(None, help="Only this release."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Compute drift reports now (per device and fleet-wide) and update alerts."""
    from .client import client_from, print_json

    body = {"range_minutes": range_minutes, "release_id": release}
    with client_from(config) as api:
        result = api.post("/api/v1/drift/run", body)
    if as_json:
        print_json(result)
        return
    if not result["fleet_reports"]:
        typer.echo("no telemetry with a known release in the range: nothing to analyse")
    for report in result["fleet_reports"]:
        s = report["statistics"]
        acc = s.get("estimated_accuracy")
        typer.echo(
            f"report {report['id']} release {report['release_id']}: "
            f"{'DRIFTED' if report['drifted'] else 'ok'}; {report['sample_count']} frames in "
            f"{report['window_count']} windows; drifted devices "
            f"{len(s['drifted_devices'])}/{s['devices']}; features "
            f"{', '.join(s['drifted_features']) or 'none'}; estimated accuracy "
            f"{'n/a' if acc is None else f'{acc:.3f}'} (reference {s['reference_accuracy']:.3f})"
        )
    for key, word in (("alerts_opened", "opened"), ("alerts_resolved", "resolved")):
        if result[key]:
            typer.echo(f"alerts {word}: {', '.join(str(i) for i in result[key])}")


@samples_app.command("list")
@fails_cleanly
def samples_list(
    status: str | None = typer.Option(None, help="new, labelled or rejected."),
    device: str | None = typer.Option(None, help="Only this device."),
    max_confidence: float | None = typer.Option(None, help="Only at most this confidence."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Samples agents uploaded, newest first (the JPEG: GET /api/v1/artifacts/<sha256>)."""
    from .client import show_page

    columns = ["id", "device_id", "predicted_label", "confidence", "status", "label",
               "dataset_version", "image_sha256", "captured_at"]
    show_page(config, "/api/v1/samples", columns, "samples", as_json, limit=limit,
              offset=offset, status=status, device=device, max_confidence=max_confidence)


def _update(sample_id: int, body: dict[str, object], config: Path | None) -> None:
    from .client import client_from

    with client_from(config) as api:
        row = api.patch(f"/api/v1/samples/{sample_id}", body)
    label = f" as {row['label']}" if row.get("label") else ""
    typer.echo(f"sample {sample_id} is {row['status']}{label}")


@samples_app.command("label")
@fails_cleanly
def samples_label(
    sample_id: int,
    label: str,
    note: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Label a sample; it joins the next dataset version the worker builds."""
    _update(sample_id, {"status": "labelled", "label": label, "note": note}, config)


@samples_app.command("reject")
@fails_cleanly
def samples_reject(
    sample_id: int,
    note: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Reject a sample: it never enters a dataset."""
    _update(sample_id, {"status": "rejected", "note": note}, config)


@fails_cleanly
def worker_command(
    config: Path | None = ConfigOpt,
    once: bool = typer.Option(
        False, "--once", help="Check triggers and run at most one queued job, then exit."
    ),
) -> None:
    """Continuous training: turn triggers into jobs, train, compare, start shadow rollouts."""
    from protocols.logs import configure_logging

    from .config import ControlPlaneSettings
    from .worker import run_worker

    settings = ControlPlaneSettings.load(config)
    configure_logging(settings.log_level)
    run_worker(settings, once=once)


__all__ = ["samples_app", "worker_command"]
