"""``/docs`` works on an air-gapped site: a real headless Chromium that can resolve no name
but loopback renders Swagger UI from the control plane's own assets, lists the operations,
and its "Authorize" dialog offers the bearer scheme the OpenAPI spec declares."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from tests.browser_kit import OFFLINE_FLAGS, Browser, chromium_path, page_errors
from tests.conftest import free_port, serving

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(chromium_path() is None, reason="needs chromium"),
]


def test_docs_render_offline_with_a_bearer_authorize(tmp_path: Path) -> None:
    port = free_port()
    app = create_app(ControlPlaneSettings(data_dir=tmp_path / "cp", port=port),
                     enable_mqtt=False)
    spec = app.openapi()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/devices"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    with serving(app, port) as url:
        browser = Browser(tmp_path / "chromium", extra_flags=OFFLINE_FLAGS)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
            for method in ("Page.enable", "Runtime.enable", "Log.enable"):
                browser.call(method, session=session)
            first_event = len(browser.events)
            browser.call("Page.navigate", {"url": f"{url}/docs"}, session)

            def run(js: str) -> object:
                return browser.evaluate(session, js)

            deadline = time.monotonic() + 30
            operations = 0
            while time.monotonic() < deadline and operations < 20:
                operations = int(run("document.querySelectorAll('.opblock').length") or 0)
                time.sleep(0.2)
            run("document.querySelector('.btn.authorize')?.click()")
            time.sleep(0.5)
            dialog = str(run("document.querySelector('.dialog-ux')?.innerText || ''"))
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session)
            (tmp_path / "docs.png").write_bytes(base64.b64decode(shot["data"]))
            errors = page_errors(browser.events[first_event:], session)
        finally:
            browser.stop()
    print(f"injected: /docs in Chromium with no name resolution -> observed {operations} "
          f"operations, Authorize dialog {dialog.splitlines()[:2]}, errors {errors}; "
          f"screenshot {tmp_path / 'docs.png'}")
    assert operations >= 20, f"Swagger UI rendered {operations} operations"
    assert "HTTPBearer" in dialog and "bearer" in dialog.lower(), dialog
    assert errors == [], errors
