"""The agent acts only on desired states the control plane signed, newest first: forged,
replayed and downgrading states are refused (logged, counted), a newer epoch (a control
plane restored from a backup) is accepted, and a newer state stops the download for an
older one. A real Mosquitto without authentication (like the embedded broker), real
ONNX models, and an in-process agent."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import ArtifactRef, DesiredState, encode, generate_signing_key, sign_desired
from protocols.signing import sign_manifest
from tests.agent_kit import (
    Release,
    Rig,
    agent_log_lines,
    looping_camera,
    make_release,
    running_rig,
    wait_until,
)
from tests.conftest import Mosquitto

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def publish_signed(rig: Rig, state: DesiredState, key: object = None) -> None:
    signed = sign_desired(state, key or rig.key)  # type: ignore[arg-type]
    topic = f"parkwatch/v1/devices/{rig.observer.device_id}/desired_signed"
    rig.observer.client.publish(topic, encode(signed), qos=1, retain=True).wait_for_publish(5)


def handled(rig: Rig) -> tuple[int, int | None]:
    reported = rig.reported()
    return reported.get("desired_epoch") or 0, reported.get("desired_revision")


def test_forged_replayed_and_downgrading_desired_states_are_refused(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "old"))
    rig.server.add(make_release(rig.key, "new"))  # signed later: newer
    agent = rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    rig.observer.desire(1, "old")
    rig.wait_healthy("old")
    rig.observer.desire(2, "new")
    rig.wait_healthy("new")
    device = rig.observer.device_id
    with agent_log_lines() as lines:
        # Anyone may write the plain topic of an anonymous broker: the agent does not read it.
        forged = DesiredState(device_id=device, revision=99, release_id="old")
        rig.observer.client.publish(f"parkwatch/v1/devices/{device}/desired", encode(forged),
                                    qos=1, retain=True).wait_for_publish(5)
        # Signed, but not by a key the agent trusts.
        publish_signed(rig, DesiredState(device_id=device, revision=100, release_id="old"),
                       generate_signing_key())
        wait_until(lambda: agent.releases.refused["signature"] == 1, 10, "a refused signature")
        # Signed by the control plane, but older than what it handled: a replay.
        publish_signed(rig, DesiredState(device_id=device, revision=1, release_id="old"))
        wait_until(lambda: agent.releases.refused["stale"] == 1, 10, "a refused replay")
        # Newer and signed, but it would move to an older release without saying rollback.
        publish_signed(rig, DesiredState(device_id=device, revision=3, release_id="old"))
        wait_until(lambda: agent.releases.refused["downgrade"] == 1, 20, "a refused downgrade")
    transition = rig.wait_transition("old")
    assert not transition["ok"] and rig.active()[0] == "new"
    assert "not a signed rollback" in transition["reason"]
    refusals = [line for line in lines if line["msg"].startswith("refused a desired state")]
    assert len(refusals) == 1 and "unknown key" in refusals[0]["msg"]
    assert any("not newer than 2 of epoch 0" in line["msg"] for line in lines)
    # A signed rollback moves it back.
    publish_signed(rig, DesiredState(device_id=device, revision=4, release_id="old",
                                     rollback=True))
    rig.wait_healthy("old")
    assert handled(rig) == (0, 4)


def test_a_newer_epoch_is_accepted_after_the_control_plane_was_restored(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    rig.server.add(make_release(rig.key, "r2"))
    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    rig.observer.desire(7, "r1")
    rig.wait_healthy("r1")
    with agent_log_lines() as lines:
        # A restored store issues revision 3 again; its new epoch orders it after 7.
        rig.observer.desire(3, "r2", epoch=1_800_000_000_000)
        rig.wait_healthy("r2")
    assert handled(rig) == (1_800_000_000_000, 3)
    assert any("epoch went from 0 to 1800000000000" in line["msg"] for line in lines)
    rig.observer.desire(8, "r1")  # epoch 0 again: older than (epoch, 3), however high
    wait_until(lambda: rig.agents[0].releases.refused["stale"] == 1, 10, "a refused state")
    assert rig.active()[0] == "r2"


def test_a_newer_desired_state_stops_the_download_for_an_older_one(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    big = os.urandom(4 << 20)  # 64 pieces of 64 KiB: a minute at the trickle below
    manifest = make_release(rig.key, "big").manifest.model_copy(update={
        "release_id": "big",
        "artifact": ArtifactRef(sha256=hashlib.sha256(big).hexdigest(), size_bytes=len(big))})
    rig.server.add(Release("big", big, sign_manifest(manifest, rig.key), manifest))
    rig.server.artifact_chunk_delay = 1.0
    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    rig.observer.desire(1, "r1")
    rig.wait_healthy("r1")
    rig.observer.desire(2, "big")
    wait_until(lambda: any(e["kind"] == "download_started" and e["release_id"] == "big"
                           for e in rig.observer.of("events")), 20, "the big download")
    rig.observer.desire(3, "r1")  # e.g. the rollout was aborted: stay on r1
    wait_until(lambda: handled(rig) == (0, 3), 20, "revision 3 handled before the download")
    assert rig.active()[0] == "r1"
    kinds = [(e["kind"], e["release_id"]) for e in rig.observer.of("events")]
    assert ("download_verified", "big") not in kinds
    assert ("activation_failed", "big") not in kinds  # cancelled, not failed
