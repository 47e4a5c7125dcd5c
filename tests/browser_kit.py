"""Drive a real headless Chromium over the DevTools protocol (CDP) for browser tests.

One browser per test: pages open in new targets, and everything the page reports as an
error is collected: uncaught exceptions, ``console.error``, and browser log entries at
level error (failed requests, Content-Security-Policy violations). The websocket client
is ``websockets`` (installed with amqtt), used through its synchronous API.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

# No name resolves except loopback: a page that needs a CDN fails as on an air-gapped site.
OFFLINE_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
    "--remote-debugging-port=0",
]
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


# Dialogs answered as an operator would, so a page's confirm() and prompt() do not block.
SAFE_DIALOGS = "window.confirm = () => true; window.prompt = () => 'from the browser test';"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    pass


@dataclass
class PageResult:
    url: str
    status: dict[str, str]
    errors: list[str]
    screenshot: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)


class Browser:
    """A headless Chromium process and one CDP connection to it; stop() ends both."""

    def __init__(self, profile_dir: Path, width: int = 1400, height: int = 1000,
                 extra_flags: tuple[str, ...] = ()) -> None:
        exe = chromium_path()
        if exe is None:
            raise CdpError("chromium is not installed: apt-get install -y chromium")
        self.width, self.height = width, height
        self.proc = subprocess.Popen(
            [
                exe,
                *CHROMIUM_FLAGS,
                *extra_flags,
                f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr_tail: list[str] = []
        self.ws = connect(self._ws_url(), max_size=None, open_timeout=10)
        self._id = 0
        self.events: list[dict[str, Any]] = []

    # Waits, not speed checks: a loaded CI machine can take this long to start chromium or
    # render a page, and each returns as soon as it is ready.
    def _ws_url(self, timeout: float = 60.0) -> str:
        found: list[str] = []
        assert self.proc.stderr is not None
        stderr = self.proc.stderr

        def read() -> None:  # keeps draining stderr so chromium never blocks on it
            for line in stderr:
                self._stderr_tail = [*self._stderr_tail[-20:], line]
                match = _LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
        if not found:
            self.stop()
            raise CdpError("chromium did not open its DevTools port: " + "".join(self._stderr_tail))
        return found[0]

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if data.get("id") == self._id:
                if "error" in data:
                    raise CdpError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result
            self.events.append(data)

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
        )
        return result.get("result", {}).get("value")

    def open(
        self,
        url: str,
        screenshot: Path | None = None,
        timeout: float = 45.0,
        values: dict[str, str] | None = None,
        full_page: bool = True,
        act: Callable[[Callable[[str], Any]], None] | None = None,
    ) -> PageResult:
        """Load ``url``, wait until ``#pw-status`` says ready, collect errors and values.

        ``act(run)``: called once the page is ready, with ``run(js)`` evaluating in the page,
        to click and check as a user would; values and the screenshot are taken after it."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method, session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.width,
                "height": self.height,
                "deviceScaleFactor": 1,
                "mobile": False,
            },
            session,
        )
        first_event = len(self.events)
        self.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + timeout
        ready = None
        while time.monotonic() < deadline:
            ready = self.evaluate(session, "document.getElementById('pw-status')?.dataset.ready")
            if ready == "1":
                break
            time.sleep(0.1)
        if act is not None and ready == "1":
            act(lambda expression: self.evaluate(session, expression))
        status = self.evaluate(
            session,
            "JSON.stringify(Object.assign({}, "
            "document.getElementById('pw-status')?.dataset || {}, "
            "{errorsText: document.getElementById('pw-errors')?.textContent}))",
        )
        got = {k: self.evaluate(session, expr) for k, expr in (values or {}).items()}
        result = PageResult(url=url, status=json.loads(status or "{}"), errors=[], values=got)
        if ready != "1":
            result.errors.append(f"page not ready after {timeout}s")
        if screenshot is not None:
            size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            height = min(int(size["height"]) + 1, 6000) if full_page else self.height
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": self.width,
                    "height": height,
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
                session,
            )
            shot = self.call("Page.captureScreenshot", {"format": "png"}, session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
        result.errors += page_errors(self.events[first_event:], session)
        self.call("Target.closeTarget", {"targetId": target})
        return result

    def stop(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def page_errors(events: list[dict[str, Any]], session: str) -> list[str]:
    """Uncaught exceptions, console errors and error-level log entries of one page."""
    found = []
    for ev in events:
        if ev.get("sessionId") != session:
            continue
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(
                "exception: "
                + str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            found.append("console.error: " + " ".join(args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return found
