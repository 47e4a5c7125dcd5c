"""``parkwatch rollouts start|list|status|watch|pause|resume|approve|abort|rollback``.

All talk to ``/api/v1/rollouts``; ``watch`` redraws the per-wave table (rich) until
the rollout stops moving.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from ..errors import ControlPlaneError
from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, parse_pairs

app = typer.Typer(no_args_is_help=True, help='Roll releases out to devices in waves.')


ReasonOpt = typer.Option(None, "--reason", help="Why; recorded in the audit log.")


NEXT_STEP = {
    "paused": "see the failed gate above; `parkwatch rollouts resume {id}` retries the wave, "
    "`parkwatch rollouts rollback {id}` reverts every device",
    "awaiting_approval": "`parkwatch rollouts approve {id}` lets it go on",
}


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ControlPlaneError(f"--gate {what}={text!r}: the value must be a number") from None


def wave_table(rollout: dict[str, Any]) -> Any:
    """A rich table: one row per wave, with its gates."""
    from rich.table import Table

    table = Table(title=f"{rollout['rollout_id']}: {rollout['release_id']} "
                        f"({rollout['mode']}) is {rollout['state']}")
    for column in ("wave", "mode", "state", "devices", "acked", "pending", "failed", "gates"):
        table.add_column(column, overflow="fold")
    for w in rollout["waves"]:
        marker = "> " if w["number"] == rollout["current_wave"] else "  "
        gates = "; ".join(f"{g['name']} {g['status']}: {g['detail']}" for g in w["gates"])
        if w["approved_by"]:
            gates = f"approved by {w['approved_by']} at {w['approved_at']}; {gates}"
        table.add_row(f"{marker}{w['number']}", w["mode"], w["state"], str(w["device_count"]),
                      str(w["acknowledged"]), str(w["pending"]), str(w["failed"]), gates or "-")
    if rollout["paused_reason"]:
        table.caption = rollout["paused_reason"]
    return table


def _action(action: str, rollout_id: str, reason: str | None, config: Path | None,
            as_json: bool) -> None:
    from .client import client_from, print_json

    with client_from(config) as api:
        rollout = api.post(f"/api/v1/rollouts/{rollout_id}/{action}",
                           {"reason": reason} if reason else None)
    if as_json:
        print_json(rollout)
    else:
        wave = rollout["current_wave"]
        typer.echo(f"{rollout_id}: {action} done; now {rollout['state']} (wave {wave})")


@app.command("start")
@fails_cleanly
def rollout_start(
    release_id: str,
    device: list[str] = typer.Option([], help="Target device; repeatable. Default: all."),
    group: str | None = typer.Option(None, help="Target a device group instead."),
    label: list[str] = typer.Option([], help="Target devices with this k=v label; repeatable."),
    mode: str = typer.Option("active", help="active, or shadow (every wave in shadow)."),
    waves: str | None = typer.Option(None, help="Cumulative waves, e.g. 1,10%,50%,100%."),
    max_per_minute: int | None = typer.Option(None, help="Most devices sent it per minute."),
    approval_after_wave: int | None = typer.Option(None, help="Waves after this wait for "
                                                              "`rollout approve`."),
    shadow_phase: bool | None = typer.Option(None, "--shadow-phase/--no-shadow-phase",
                                             help="Shadow the first wave's devices first."),
    shadow_fraction: float | None = typer.Option(None, help="Share of frames a shadowing "
                                                 "device mirrors to the candidate (0.25)."),
    on_gate_failure: str | None = typer.Option(None, help="rollback (default) or pause."),
    gate: list[str] = typer.Option([], help="Gate setting k=v, e.g. min_agreement=0.9; "
                                            "repeatable (see docs/control-plane.md)."),
    supersede: bool = typer.Option(False, help="Take devices over from their active rollout."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Roll a release out in waves with health gates."""
    from .client import client_from, print_json

    if mode not in ("active", "shadow"):
        raise ControlPlaneError("--mode must be active or shadow")
    if on_gate_failure not in (None, "rollback", "pause"):
        raise ControlPlaneError("--on-gate-failure must be rollback or pause")
    body: dict[str, Any] = {
        "release_id": release_id, "devices": device or None, "mode": mode, "group": group,
        "labels": parse_pairs(label, "label") or None, "supersede": supersede,
        "waves": [w.strip() for w in waves.split(",") if w.strip()] if waves else None,
        "max_devices_per_minute": max_per_minute, "approval_after_wave": approval_after_wave,
        "shadow_phase": shadow_phase, "shadow_fraction": shadow_fraction,
        "on_gate_failure": on_gate_failure,
        "gates": {k: _number(v, k) for k, v in parse_pairs(gate, "gate").items()} or None,
    }
    with client_from(config) as api:
        rollout = api.post("/api/v1/rollouts", {k: v for k, v in body.items() if v is not None})
    if as_json:
        print_json(rollout)
        return
    sizes = ", ".join(str(w["device_count"]) for w in rollout["waves"])
    typer.echo(f"rollout {rollout['rollout_id']} of {release_id} to "
               f"{rollout.get('device_count', len(rollout['devices']))} device(s) in waves of "
               f"{sizes}: {rollout['state']}")
    typer.echo(f"follow it with `parkwatch rollouts watch {rollout['rollout_id']}`")


@app.command("list")
@fails_cleanly
def rollout_list(
    active: bool | None = typer.Option(None, "--active/--finished", help="Only these."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Rollouts, newest first."""
    from .client import show_page

    columns = ["rollout_id", "release_id", "mode", "state", "current_wave", "created_by",
               "created_at"]
    show_page(config, "/api/v1/rollouts", columns, "rollouts", as_json, limit=limit,
              offset=offset, active=active)


@app.command("status")
@fails_cleanly
def rollout_status(
    rollout_id: str,
    devices: bool = typer.Option(True, "--devices/--no-devices", help="List each device."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A rollout: its waves with gate results, and each device's state."""
    from rich.console import Console

    from .client import client_from, print_json, print_table

    with client_from(config) as api:  # the device list only when it is shown
        rollout = api.get(f"/api/v1/rollouts/{rollout_id}",
                          device_limit=None if devices or as_json else 0)
    if as_json:
        print_json(rollout)
        return
    Console().print(wave_table(rollout))
    if devices:
        print_table(rollout["devices"], ["device_id", "wave", "state", "revision", "detail",
                                         "updated_at"])
        shown, total = len(rollout["devices"]), rollout.get("device_count", 0)
        if total > shown:
            typer.echo(f"first {shown} of {total} devices: see the rest with --json and the "
                       "API's device_offset")
    if rollout["state"] in NEXT_STEP:
        typer.echo(NEXT_STEP[rollout["state"]].format(id=rollout_id))


@app.command("watch")
@fails_cleanly
def rollout_watch(
    rollout_id: str,
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between refreshes."),
    timeout: float | None = typer.Option(None, help="Give up after this many seconds."),
    config: Path | None = ConfigOpt,
) -> None:
    """Live per-wave progress until the rollout completes or stops (exit 1 unless completed)."""
    from rich.live import Live

    from .client import client_from

    deadline = None if timeout is None else time.monotonic() + timeout
    with client_from(config) as api:
        rollout = api.get(f"/api/v1/rollouts/{rollout_id}", device_limit=0)
        with Live(wave_table(rollout), refresh_per_second=4) as live:
            while rollout["state"] == "in_progress":
                if deadline is not None and time.monotonic() > deadline:
                    raise ControlPlaneError(f"still in progress after {timeout:g}s: watch again "
                                            "or see `parkwatch rollouts status`")
                time.sleep(interval)
                rollout = api.get(f"/api/v1/rollouts/{rollout_id}", device_limit=0)
                live.update(wave_table(rollout))
    if rollout["state"] == "completed":
        typer.echo(f"{rollout_id} completed")
        return
    hint = NEXT_STEP.get(rollout["state"], "").format(id=rollout_id)
    raise ControlPlaneError(f"{rollout_id} is {rollout['state']}" + (f": {hint}" if hint else ""))


@app.command("pause")
@fails_cleanly
def rollout_pause(rollout_id: str, reason: str | None = ReasonOpt,
                  config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Stop promoting; devices keep what they have."""
    _action("pause", rollout_id, reason, config, as_json)


@app.command("resume")
@fails_cleanly
def rollout_resume(rollout_id: str, reason: str | None = ReasonOpt,
                   config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Go on; a failed wave starts again from the beginning."""
    _action("resume", rollout_id, reason, config, as_json)


@app.command("approve")
@fails_cleanly
def rollout_approve(rollout_id: str, reason: str | None = ReasonOpt,
                    config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Let the rollout go beyond its approval wave (audited: who and when)."""
    _action("approve", rollout_id, reason, config, as_json)


@app.command("abort")
@fails_cleanly
def rollout_abort(rollout_id: str, reason: str | None = ReasonOpt,
                  config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Stop for good: no further device gets the release; those that have it keep it."""
    _action("abort", rollout_id, reason, config, as_json)


@app.command("rollback")
@fails_cleanly
def rollout_rollback(rollout_id: str, reason: str | None = ReasonOpt,
                     config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Every device that got the release goes back to its previous release."""
    _action("rollback", rollout_id, reason, config, as_json)
