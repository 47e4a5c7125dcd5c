"""A control plane on a free port (uvicorn, SQLite, real MQTT ingest) for tests that drive
a whole fleet: the fleet simulator and the dashboard in a browser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from tests.conftest import free_port, serving


@dataclass
class ControlPlane:
    url: str
    token: str
    settings: ControlPlaneSettings

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )


@contextmanager
def serve_control_plane(data_dir: Path, mqtt_url: str) -> Iterator[ControlPlane]:
    """A control plane in uvicorn on a free port, ingesting from ``mqtt_url``."""
    port = free_port()
    settings = ControlPlaneSettings(data_dir=data_dir, port=port, mqtt_url=mqtt_url)
    with serving(create_app(settings), port) as url:
        token = (data_dir / "admin.token").read_text().strip()
        yield ControlPlane(url, token, settings)
