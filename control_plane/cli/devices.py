"""``parkwatch devices``: provision, list, label and inspect devices."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, parse_pairs, renamed

app = typer.Typer(no_args_is_help=True, help='Provision and inspect devices.')


@app.command("add", hidden=True, deprecated=renamed("devices create"))
@app.command("create")
@fails_cleanly
def devices_add(
    device_id: str = typer.Argument(..., help="Device id: a-z, 0-9, '-', '_'."),
    label: list[str] = typer.Option([], help="k=v label (park, camera type, ...); repeatable."),
    camera: list[str] = typer.Option([], help="camera_id=source for the agent; repeatable."),
    agent_data_dir: str = typer.Option("/var/lib/parkwatch-agent", help="Agent's data folder."),
    out: Path | None = typer.Option(None, help="Write the agent config here (mode 0600)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Provision a device: prints (or writes) its agent config, with its token."""
    from ..services.auth import write_secret
    from .client import client_from, print_json

    cameras = [{"camera_id": k, "source": v} for k, v in parse_pairs(camera, "camera").items()]
    body = {
        "device_id": device_id,
        "labels": parse_pairs(label, "label"),
        "cameras": cameras,
        "agent_data_dir": agent_data_dir,
    }
    with client_from(config) as api:
        answer = api.post("/api/v1/devices", body)
    if out is not None:
        write_secret(out, answer["agent_config_toml"].rstrip("\n"))
    if as_json:
        print_json(answer)
    elif out is not None:
        typer.echo(f"device {device_id} added; agent config written to {out}")
    else:
        typer.echo(answer["agent_config_toml"], nl=False)


@app.command("reissue")
@fails_cleanly
def devices_reissue(
    device_id: str,
    reason: str = typer.Option(..., help="Why: rotation, hardware replaced, back in service "
                               "(goes to the audit log)."),
    camera: list[str] = typer.Option([], help="camera_id=source for the agent; repeatable."),
    agent_data_dir: str = typer.Option("/var/lib/parkwatch-agent", help="Agent's data folder."),
    out: Path | None = typer.Option(None, help="Write the agent config here (mode 0600)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """New credentials for a device: rotate them, move the device to new hardware (its
    history stays with its id), or bring a decommissioned device back. The old token stops
    at once; its broker login at the next `parkwatch mqtt acl` and broker reload."""
    from ..services.auth import write_secret
    from .client import client_from, print_json

    cameras = [{"camera_id": k, "source": v} for k, v in parse_pairs(camera, "camera").items()]
    body = {"reason": reason, "cameras": cameras, "agent_data_dir": agent_data_dir}
    with client_from(config) as api:
        answer = api.post(f"/api/v1/devices/{device_id}/reissue", body)
    if out is not None:
        write_secret(out, answer["agent_config_toml"].rstrip("\n"))
    if as_json:
        print_json(answer)
        return
    if out is None:
        typer.echo(answer["agent_config_toml"], nl=False)
    else:
        typer.echo(f"device {device_id}: new credentials; agent config written to {out}")
    typer.echo("then: parkwatch mqtt acl --out ... and reload the broker (the old broker "
               "login works until then)", err=True)


@app.command("decommission")
@fails_cleanly
def devices_decommission(
    device_id: str,
    reason: str = typer.Option(..., help="Why (goes to the audit log)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Take a device out of service: its tokens are revoked (the API refuses it at once,
    the broker after `parkwatch mqtt acl` and a reload); its history stays.
    `devices reissue` brings it back."""
    from .client import client_from, print_json

    with client_from(config) as api:
        row = api.request("POST", f"/api/v1/devices/{device_id}/decommission",
                          params={"reason": reason})
    if as_json:
        print_json(row)
        return
    typer.echo(f"device {device_id} decommissioned; now run `parkwatch mqtt acl --out ...` "
               "and reload the broker to remove its broker login")


@app.command("list")
@fails_cleanly
def devices_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
    online: bool | None = typer.Option(None, "--online/--offline", help="Only on/offline."),
    label: list[str] = typer.Option([], help="k=v; repeatable, all must match."),
    group: str | None = typer.Option(None, help="Only members of this device group."),
    release: str | None = typer.Option(None, help="Desired or currently active release."),
) -> None:
    """List devices with liveness and desired release."""
    from .client import show_page

    columns = [
        "device_id",
        "online",
        "last_seen",
        "current_release_id",
        "desired_release_id",
        "desired_revision",
        "desired_mode",
        "labels",
    ]
    params = {"online": online, "label": label, "group": group, "release": release}
    show_page(
        config, "/api/v1/devices", columns, "devices", as_json, limit=limit, offset=offset, **params
    )


@app.command("label")
@fails_cleanly
def devices_label(
    device_id: str,
    labels: list[str] = typer.Argument(..., help="k=v to set, k- to remove (kubectl style)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Set or remove labels of a device: `parkwatch devices label cam-1 park=p1 night-`."""
    from .client import client_from, print_json

    removals = [item for item in labels if item.endswith("-") and "=" not in item]
    remove = [item[:-1] for item in removals]
    set_labels = parse_pairs([i for i in labels if i not in removals], "label")
    with client_from(config) as api:
        device = api.patch(
            f"/api/v1/devices/{device_id}/labels", {"set": set_labels, "remove": remove}
        )
    if as_json:
        print_json(device)
    else:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(device["labels"].items())) or "none"
        typer.echo(f"{device_id} labels: {shown}")


@app.command("show")
@fails_cleanly
def devices_show(device_id: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One device, with its last reported state."""
    from .client import show_record

    show_record(config, f"/api/v1/devices/{device_id}", device_id, as_json)
