"""The `parkwatch` entry point: one program, a sub-command per component."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from parkwatch_cli import app


def test_schema_command_prints_every_wire_model() -> None:
    result = CliRunner().invoke(app, ["protocols", "schema"])
    assert result.exit_code == 0, result.output
    schemas = json.loads(result.output)
    assert {"DesiredState", "TelemetryWindow", "ReleaseManifest"} <= set(schemas)


def test_every_component_has_its_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("agent", "train", "register", "data", "serve", "releases", "rollouts",
                    "devices", "demo"):
        assert command in result.output, f"'{command}' missing from parkwatch --help"


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from parkwatch_cli import app; "
        "CliRunner().invoke(app, ['--help']); "
        "print(sorted(m for m in ('torch', 'fastapi', 'sqlmodel', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
