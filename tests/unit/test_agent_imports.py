"""The agent stays small: no heavy or server-side library is ever imported."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import edge_agent

FORBIDDEN = {"torch", "fastapi", "sqlmodel", "scipy", "httpx", "control_plane", "trainer",
             "onnx"}
MODULES = ["edge_agent"] + [
    f"edge_agent.{m.name}" for m in pkgutil.iter_modules(edge_agent.__path__)
]


def test_no_agent_module_pulls_in_anything_forbidden() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    loaded = {name.split(".")[0] for name in out.split()}
    assert not loaded & FORBIDDEN, sorted(loaded & FORBIDDEN)
    assert len(MODULES) >= 12


def test_plain_import_is_light() -> None:
    code = "import sys, edge_agent; print(sorted(m for m in ('cv2', 'onnxruntime', 'paho') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
