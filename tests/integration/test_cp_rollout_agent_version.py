"""A release whose manifest sets a field older agents refuse (``crops.destreak``: agents
forbid unknown keys) names the agent version it needs, and a rollout of it to devices
that report older agents, or never reported their version, is refused with their names,
not failed on them one by one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from control_plane.errors import InvalidRequestError
from control_plane.services.releases import build_manifest
from control_plane.store.models import Device, ModelVersion, Release
from control_plane.testing import registration
from edge_agent import __version__ as agent_version
from protocols import CropSpec, sign_manifest
from protocols.manifest import version_tuple
from tests.rollout_kit import sqlite_fleet


def manifest_row(crops: CropSpec) -> ModelVersion:
    spec = registration("petnet", [("a" * 64, 10, "int8")], crops=crops)
    return ModelVersion(model_id=1, number=2, version="2", primary_sha256="a" * 64,
                        spec=spec.model_dump(mode="json"), created_by="t")


def test_a_destreak_release_needs_a_newer_agent_and_old_agents_are_left_out(
    tmp_path: Path,
) -> None:
    plain = build_manifest("r2", "petnet", manifest_row(CropSpec()))
    assert plain.min_agent_version == "0.1.0"  # what every agent reads: unchanged
    manifest = build_manifest("r2", "petnet", manifest_row(CropSpec(destreak=3)))
    assert manifest.min_agent_version == "0.2.0"
    assert version_tuple(agent_version) >= version_tuple(manifest.min_agent_version)

    with sqlite_fleet(tmp_path, 4) as fleet:
        with Session(fleet.engine) as s:
            release = s.get(Release, "r2")
            assert release is not None
            release.manifest = sign_manifest(manifest, Ed25519PrivateKey.generate()).model_dump(
                mode="json", by_alias=True)
            for device_id, version in zip(fleet.ids, ("0.1.0", "0.2.0", None, "0.2.1"),
                                          strict=True):
                device = s.get(Device, device_id)
                assert device is not None
                device.agent_version = version
                s.add(device)
            s.add(release)
            s.commit()
        with pytest.raises(InvalidRequestError) as refused:
            fleet.start()
        reason = str(refused.value)
        assert "\n" not in reason  # one line, naming the devices and what to do
        assert re.search(r"needs agents >= 0\.2\.0.*1 report older agents: cam-00;"
                         r" 1 never reported an agent version: cam-02: upgrade their agents",
                         reason), reason
        assert "leave them out" in reason
        assert fleet.out.sent == []  # nothing went out, nothing was planned
        # A device that never reported its version alone is refused too: it may be old.
        with pytest.raises(InvalidRequestError, match=r"never reported.*: cam-02:"):
            fleet.start(ids=[fleet.ids[2]])
        assert fleet.out.sent == []
        # Without them it goes out.
        rollout = fleet.start(ids=[fleet.ids[1], fleet.ids[3]])
        assert fleet.get(rollout).state == "in_progress"


def test_a_release_every_agent_reads_goes_to_devices_that_never_reported(
    tmp_path: Path,
) -> None:
    with sqlite_fleet(tmp_path, 2) as fleet:
        with Session(fleet.engine) as s:
            release = s.get(Release, "r2")
            assert release is not None
            plain = build_manifest("r2", "petnet", manifest_row(CropSpec()))
            release.manifest = sign_manifest(plain, Ed25519PrivateKey.generate()).model_dump(
                mode="json", by_alias=True)
            s.add(release)
            for device_id in fleet.ids:
                device = s.get(Device, device_id)
                assert device is not None
                device.agent_version = None
                s.add(device)
            s.commit()
        assert fleet.get(fleet.start()).state == "in_progress"
