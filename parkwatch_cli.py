"""The `parkwatch` command: one Typer app with a sub-app per component.

Each component's CLI is imported only if that component's extra is installed,
so an edge box with `parkwatch[agent]` gets `parkwatch agent ...` and a clear
hint for the rest instead of an ImportError.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
from pathlib import Path

import typer

app = typer.Typer(
    name="parkwatch",
    help="parkwatch: train, sign, roll out and watch pet-park camera classifiers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

@app.callback()
def _root(
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1,
        help="Seconds an operator command waits for the control plane's API to connect or "
        "answer (default 10; PARKWATCH_API_TIMEOUT_SECONDS).",
    ),
) -> None:
    """parkwatch: train, sign, roll out and watch pet-park camera classifiers."""
    if timeout is not None:
        # The settings toolkit reads the environment: flag > environment > file.
        os.environ["PARKWATCH_API_TIMEOUT_SECONDS"] = str(timeout)


protocols_app = typer.Typer(help="The wire contract.", no_args_is_help=True)
app.add_typer(protocols_app, name="protocols")


@protocols_app.command("schema")
def protocols_schema(
    out: Path | None = typer.Option(None, help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of every wire message and the release manifest."""
    from protocols.codec import dumps_schemas

    text = dumps_schemas()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        typer.echo(f"wrote {out}")


def _missing(extra: str, name: str, error: ImportError) -> typer.Typer:
    stub = typer.Typer(help=f"(needs: pip install 'parkwatch[{extra}]')")

    @stub.callback(invoke_without_command=True)
    def _explain() -> None:
        typer.echo(
            f"'parkwatch {name}' needs the {extra} extra: pip install 'parkwatch[{extra}]' "
            f"({error})",
            err=True,
        )
        raise typer.Exit(2)

    return stub


def _mount(module: str, attr: str, name: str | None, extra: str, label: str) -> None:
    """Add ``module.attr`` (a Typer app) under ``name``; ``None`` merges its commands."""
    try:
        sub = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        sub = _missing(extra, label, exc)
        if name is None:
            name = label
    app.add_typer(sub, name=name)


_mount("edge_agent.cli", "app", "agent", "agent", "agent")
_mount("trainer.cli", "app", None, "trainer", "train")
_mount("trainer.sources.cli", "app", "data", "trainer", "data")
_mount("control_plane.cli", "app", None, "control-plane", "serve")


@app.command()
def demo(
    workdir: Path = typer.Option(Path("demo-data"), help="Where the demo keeps its files."),
    duration: float = typer.Option(
        0, help="Seconds to watch telemetry at the end; 0 = until Ctrl-C."
    ),
    epochs: int = typer.Option(
        0, help="Training epochs (first model and retraining); 0: 25.",
    ),
    arch: str = typer.Option(
        "", help="Trainer --arch; empty or lite0 (pretrained EfficientNet-Lite0 in regions "
        "mode: the wide cameras need it).",
    ),
    story: str = typer.Option(
        "full",
        help="full: first rollout, night falls on two cameras (nothing raised), day and night "
        "baselines and a simulated labeller, then the lamps dim on the night cameras: drift "
        "alert, retraining, shadow rollout and promotion; basic: stop after the first rollout "
        "(faster).",
    ),
    photos: Path | None = typer.Option(
        None, help="Train on real photos from this cat/dog ImageFolder "
        "(e.g. ../shared/data/cats_and_dogs) and film the cameras from held-out photos.",
    ),
) -> None:
    """The whole loop on embedded defaults: data, training, control plane, agents, and
    (full story) nightfall, baselines, labels, dimmed lamps, drift alert, retraining,
    shadow rollout, promotion, dashboard."""
    script = Path(__file__).resolve().parent / "scripts" / "demo.py"
    if not script.exists():
        typer.echo("the demo runs from a source checkout (scripts/demo.py not found)", err=True)
        raise typer.Exit(2)
    if story not in ("full", "basic"):
        typer.echo(f"--story {story!r}: choose full or basic", err=True)
        raise typer.Exit(2)
    sys.argv = [str(script), "--workdir", str(workdir), "--duration", str(duration),
                "--epochs", str(epochs), "--story", story, "--arch", arch]
    if photos is not None:
        sys.argv += ["--photos", str(photos)]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    app()
