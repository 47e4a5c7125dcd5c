"""Every dashboard view an operator can reach on its own has a link in the top bar."""

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "control_plane" / "web"
# Views opened from another page with an argument (a device's id), not from the top bar.
NEEDS_ARGUMENT = {"device"}


def _views() -> set[str]:
    app = (WEB / "app.js").read_text()
    body = app.split("const VIEWS = {", 1)[1].split("};", 1)[0]
    return {m.group(1) or m.group(2) for m in re.finditer(r'^\s*(?:"([\w-]+)"|(\w+)):', body, re.M)}


def test_every_view_is_in_the_top_bar() -> None:
    nav = (WEB / "index.html").read_text().split('<nav id="nav">', 1)[1].split("</nav>", 1)[0]
    linked = set(re.findall(r'data-view="([\w-]+)"', nav))
    views = _views()
    assert "fleet" in views and "dead-letters" in views  # the parse found the table
    assert views - NEEDS_ARGUMENT - linked == set()
