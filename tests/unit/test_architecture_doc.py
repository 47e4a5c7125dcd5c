"""docs/architecture.md stays the map: its state machines are the tables, and it names
every folder of the control plane."""

from __future__ import annotations

from pathlib import Path

from scripts.state_diagrams import BEGIN, END, section

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_the_state_machines_are_drawn_from_the_tables() -> None:
    drawn = DOC[DOC.index(BEGIN):DOC.index(END) + len(END)] + "\n"
    assert drawn == section(), "run `python scripts/state_diagrams.py` and paste its output"


def test_every_control_plane_folder_is_on_the_map() -> None:
    folders = sorted(p.name for p in (ROOT / "control_plane").iterdir()
                     if (p / "__init__.py").exists())
    assert len(folders) >= 10
    missing = [f for f in folders if f"control_plane/{f}/" not in DOC]
    assert missing == [], f"docs/architecture.md does not say where {missing} live"
