"""The one wording of a failed call to the control plane's HTTP API (CLI and trainer)."""

from __future__ import annotations

import json

from protocols.api_errors import ClientHints, answered, error_detail, unreachable

HINTS = ClientHints(reach="start it with `parkwatch serve`", token="set PARKWATCH_API_TOKEN")


def body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


def test_the_detail_of_an_error_body_else_its_text_else_the_reason() -> None:
    assert error_detail(body("no rollout 'x': see `parkwatch rollout list`")) \
        == "no rollout 'x': see `parkwatch rollout list`"
    assert error_detail(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert error_detail(b"", "Service Unavailable") == "Service Unavailable"
    assert error_detail(b'["odd"]') == "['odd']"
    assert len(error_detail(b"x" * 5000)) == 300


def test_answers_keep_the_servers_fix_and_add_the_clients_hint() -> None:
    assert answered(404, body("no alert 7: see `parkwatch alerts list`"), call="GET /x",
                    hints=HINTS, token_sent=True) \
        == "GET /x: 404: no alert 7: see `parkwatch alerts list`"
    refused = answered(403, body("the token lacks scope operate"), call="POST /y",
                       hints=HINTS, token_sent=True)
    assert refused == ("POST /y: the control plane refused the token (403: the token lacks "
                       "scope operate); set PARKWATCH_API_TOKEN")
    assert answered(401, body("missing bearer token"), call="GET /z", hints=HINTS,
                    token_sent=False) == "GET /z: no API token: set PARKWATCH_API_TOKEN"


def test_unreachable_names_the_url_and_the_fix() -> None:
    assert unreachable("http://127.0.0.1:9", "GET /x", HINTS) \
        == "cannot reach the control plane at http://127.0.0.1:9 (GET /x): start it with " \
           "`parkwatch serve`"
