"""The shipped brokers send a whole ingest batch: each deploy's mosquitto.conf sets
max_inflight_messages (Mosquitto's default, 20, holds the first batch after a pause to 20
windows, and a bigger batch waits out the linger for the rest), and the control plane
shipped beside it asks for no bigger batch than that (docs/performance.md, "The broker's
in-flight limit and the batch")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from control_plane.config.server import ControlPlaneSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


def inflight(conf: Path) -> int | None:
    """The max_inflight_messages a Mosquitto config sets (None: the broker's default)."""
    found = re.findall(r"^\s*max_inflight_messages\s+(\d+)\s*$", conf.read_text(), re.M)
    assert len(found) <= 1, f"{conf} sets max_inflight_messages more than once"
    return int(found[0]) if found else None


def production_cp_toml() -> dict[str, object]:
    """The cp.toml that docs/operations.md, "Setting it up", step 2 gives."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    step = text[text.index("**2. The control plane's config**"):]
    return tomllib.loads(step.split("```toml\n", 1)[1].split("```", 1)[0])


@pytest.mark.parametrize(("broker", "cp"), [
    ("mosquitto/mosquitto.conf", "production"),
    ("pilot/mosquitto.conf", "pilot/cp.toml"),
])
def test_the_shipped_broker_sends_a_whole_ingest_batch(
        broker: str, cp: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PARKWATCH_CONFIG", "PARKWATCH_INGEST_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    limit = inflight(DEPLOY / broker)
    assert limit is not None, f"deploy/{broker}: set max_inflight_messages (default 20)"
    if cp == "production":
        settings = ControlPlaneSettings(**production_cp_toml())
    else:
        settings = ControlPlaneSettings.load(DEPLOY / cp)
    assert "ingest_batch_size" in settings.model_fields_set, f"{cp}: set ingest_batch_size"
    assert settings.ingest_batch_size <= limit, (
        f"{cp}: ingest_batch_size {settings.ingest_batch_size} waits out the linger "
        f"behind deploy/{broker}'s max_inflight_messages {limit}")
