"""``/dashboard``: the static page is served without a token, with a strict CSP, and
nothing outside ``control_plane/web`` can be reached through it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.api.routes.web import WEB_DIR
from control_plane.config import ControlPlaneSettings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        yield c


def test_root_redirects_to_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/dashboard/"


def test_every_file_the_page_loads_is_served_with_the_policy(client: TestClient) -> None:
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline script or style: the policy would block them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "style=" not in page.text and "<style" not in page.text
    linked = re.findall(r'(?:src|href)="([^"#:]+)"', page.text)
    modules = {
        m for f in WEB_DIR.glob("*.js") for m in re.findall(r'from "\./([^"]+)"', f.read_text())
    }
    for name in {*linked, *modules}:
        response = client.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        assert "content-security-policy" in response.headers
        if name.endswith(".js"):
            assert "javascript" in response.headers["content-type"], name
    assert {"app.js", "errors.js", "style.css"} <= set(linked) | modules


def test_the_page_is_public_but_the_api_is_not(client: TestClient) -> None:
    assert client.get("/dashboard/app.js").status_code == 200
    assert client.get("/api/v1/devices").status_code == 401


@pytest.mark.parametrize(
    "path", ["/dashboard/../config.py", "/dashboard/%2e%2e/config.py", "/dashboard/nope.js"]
)
def test_nothing_outside_the_web_folder_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "ControlPlaneSettings" not in response.text
