"""``parkwatch drift``: drift reports (list, show) and an analysis run now."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Drift reports.')


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- drift -----------------------------------------------------------------------------------
@app.command("list")
@fails_cleanly
def drift_list(
    device: str | None = typer.Option(None, help="Only this device."),
    release: str | None = typer.Option(None, help="Only this release."),
    drifted: bool | None = typer.Option(None, "--drifted/--not-drifted", help="By verdict."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Drift reports, newest first, each with the feature that drove its verdict: its
    statistic over its own level, against which reference."""
    from ..drift.wording import driver_brief
    from .client import client_from, print_json, print_table

    with client_from(config) as api:
        page = api.get("/api/v1/drift", device=device, release=release, drifted=drifted,
                       limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    rows = [r | {"driven_by": driver_brief((r.get("statistics") or {}).get("verdict") or {})}
            for r in page["items"]]
    columns = ["id", "device_id", "release_id", "drifted", "driven_by", "window_count",
               "sample_count", "window_end"]
    print_table(rows, columns, title="drift reports", total=page["total"])


@app.command("show")
@fails_cleanly
def drift_show(report_id: int, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One drift report with its statistics and alarm levels."""
    from .client import show_record

    show_record(config, f"/api/v1/drift/{report_id}", f"drift report {report_id}", as_json)


@app.command("baselines")
@fails_cleanly
def drift_baselines(
    device: str | None = typer.Option(None, help="Only this device."),
    release: str | None = typer.Option(None, help="Only this release."),
    condition: str | None = typer.Option(None, help="Only this condition (day, dusk, ...)."),
    active: bool = typer.Option(False, "--active", help="Only the active ones."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Production baselines per camera × condition, newest first (and, under the table,
    why a baseline judges some of its features not at all, with the fix)."""
    from .client import client_from, print_json, print_table

    with client_from(config) as api:
        page = api.get("/api/v1/drift/baselines", device=device, release=release,
                       condition=condition, active=active or None, limit=limit,
                       offset=offset)
    if as_json:
        print_json(page)
        return
    # An old release's baselines stay active (a rollback judges against them again), but
    # listed as plain "active" they read as what judges the camera now.
    rows = [b | {"state": "superseded"} if b.get("superseded") else b for b in page["items"]]
    columns = ["id", "device_id", "camera_id", "condition", "release_id", "version", "state",
               "window_count", "features", "unfitted", "learned_to", "retired_reason"]
    print_table(rows, columns, title="drift baselines", total=page["total"])
    for b in rows:
        if b.get("unfitted_why") and b["state"] == "active":
            typer.echo(f"baseline {b['id']} ({b['device_id']}/{b['camera_id']} "
                       f"{b['condition']}): {b['unfitted_why']}")
    old = sorted({(b["device_id"], b["release_id"]) for b in rows if b["state"] == "superseded"})
    for device_id, release_id in old:
        typer.echo(f"superseded: {device_id}'s baselines of release {release_id} judge nothing "
                   "while it runs another release; kept for a rollback to it")


@app.command("learning")
@fails_cleanly
def drift_learning(
    device: str | None = typer.Option(None, help="Only this device."),
    release: str | None = typer.Option(None, help="Only this release."),
    every_release: bool = typer.Option(
        False, "--every-release",
        help="Also those of releases their devices no longer report active."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Camera × conditions without a production baseline yet (of the release each device
    runs): why, and the fix."""
    from .client import client_from, print_json

    with client_from(config) as api:
        page = api.get("/api/v1/drift/baselines/learning", device=device, release=release,
                       every_release=every_release or None, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        typer.echo("no camera × condition is waiting for a baseline (those seen have one, or "
                   "no analysis ran yet: `parkwatch drift run`)")
        return
    typer.echo(f"{page['total']} camera × condition(s) without a baseline:")
    for r in page["items"]:
        typer.echo(f"  {r['device_id']}/{r['camera_id']} {r['condition']} "
                   f"(release {r['release_id']}, {r['reason']}): {r['message']}")


@app.command("reset-baseline")
@fails_cleanly
def drift_reset_baseline(
    device: str | None = typer.Option(None, help="This device's baselines."),
    camera: str | None = typer.Option(None, help="Only this camera (with --device)."),
    condition: str | None = typer.Option(None, help="Only this condition."),
    release: str | None = typer.Option(None, help="Every camera of this release."),
    reason: str = typer.Option("operator reset", help="Why (kept with the baseline)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Retire active baselines (a camera moved on purpose); new ones are learned."""
    from .client import client_from, print_json

    body = {"device_id": device, "camera_id": camera, "condition": condition,
            "release_id": release, "reason": reason}
    with client_from(config) as api:
        result = api.post("/api/v1/drift/baselines/reset", body)
    if as_json:
        print_json(result)
        return
    ids = ", ".join(str(i) for i in result["retired"]) or "none"
    typer.echo(f"retired baselines: {ids}; new ones are learned from the next windows")


@app.command("accuracy")
@fails_cleanly
def drift_accuracy(
    release: str = typer.Option(..., help="The release."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Realized accuracy from labelled samples per camera × condition (with its interval),
    beside the label-free estimate."""
    from .client import client_from, print_json

    with client_from(config) as api:
        report = api.get("/api/v1/drift/accuracy", release=release)
    if as_json:
        print_json(report)
        return
    typer.echo(f"release {release}: held-out accuracy {_fmt(report['held_out_accuracy'])}; "
               f"{report['confidence']:.0%} intervals; judged from {report['min_labels']} labels")
    dropped = {(r["device_id"], r["camera_id"], r["condition"]) for r in report["dropped"]}
    for r in report["cameras"]:
        flag = "  DROPPED" if (r["device_id"], r["camera_id"], r["condition"]) in dropped else ""
        typer.echo(f"  {r['device_id']}/{r['camera_id']} {r['condition']}: "
                   f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                   f"from {r['labelled']} labels (their confidence expected "
                   f"{_fmt(r.get('expected'))}); estimate over all crops "
                   f"{_fmt(r['estimated_accuracy'])}{flag}")
    if not report["cameras"]:
        typer.echo("  no labelled samples: `parkwatch samples label ID LABEL`")


@app.command("run")
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
    from ..drift.wording import driver_text
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
        acc, ref = (_fmt(s.get(k)) for k in ("estimated_accuracy", "reference_accuracy"))
        typer.echo(
            f"report {report['id']} release {report['release_id']}: "
            f"{'DRIFTED' if report['drifted'] else 'ok'}; {report['sample_count']} frames in "
            f"{report['window_count']} windows; drifted devices "
            f"{len(s['drifted_devices'])}/{s['devices']}; features "
            f"{', '.join(s['drifted_features']) or 'none'}; estimated accuracy "
            f"{acc} (reference {ref})"
        )
        typer.echo(f"  verdict: {driver_text(s.get('verdict') or {})}")
    for rel, why in (result.get("failed_releases") or {}).items():
        typer.echo(f"release {rel} not analysed: {why}", err=True)
    for key, word in (("alerts_opened", "opened"), ("alerts_resolved", "resolved")):
        if result[key]:
            typer.echo(f"alerts {word}: {', '.join(str(i) for i in result[key])}")
