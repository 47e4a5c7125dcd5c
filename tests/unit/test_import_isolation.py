"""Dependency direction (docs/architecture.md, "Dependency rules"), checked in fresh
interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["torch", "fastapi", "sqlmodel", "scipy"]


def loaded_modules(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("package", ["edge_agent", "edge_agent.cli", "edge_agent.daemon"])
def test_agent_pulls_in_nothing_heavy(package: str) -> None:
    loaded = loaded_modules(f"import {package}")
    assert not loaded & set(HEAVY), f"{package} loaded {sorted(loaded & set(HEAVY))}"
    assert not loaded & {"control_plane", "trainer"}


def test_protocols_imports_no_component() -> None:
    loaded = loaded_modules("import protocols")
    assert not loaded & {"edge_agent", "control_plane", "trainer", *HEAVY, "numpy", "cv2"}


def test_trainer_does_not_import_the_control_plane() -> None:
    loaded = loaded_modules("import trainer, trainer.pipeline")
    assert not loaded & {"control_plane", "edge_agent", "fastapi", "sqlmodel"}


def test_control_plane_does_not_import_torch() -> None:
    loaded = loaded_modules("import control_plane, control_plane.api.app")
    assert not loaded & {"torch", "trainer", "edge_agent"}
