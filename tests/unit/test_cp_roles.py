"""Pure logic: process roles, filters' parsing, job and alert state machines."""

from __future__ import annotations

import os

import pytest

from control_plane.api.routes.devices import parse_selector
from control_plane.api.routes.versions import parse_min_metrics
from control_plane.config import ControlPlaneSettings
from control_plane.errors import ConfigError, InvalidRequestError
from control_plane.services.jobs import FINAL
from control_plane.services.states import ALERT, JOB
from control_plane.services.versions import reported_release_ids


def test_split_roles_need_an_external_broker() -> None:
    with pytest.raises(ConfigError, match="needs a shared broker"):
        ControlPlaneSettings.load(None, role="ingest")
    s = ControlPlaneSettings.load(None, role="ingest", mqtt_url="mqtt://b:1883")
    assert s.client_id_for_role().endswith(f"-ingest-{os.uname().nodename[:32]}-{os.getpid()}")
    named = ControlPlaneSettings.load(None, role="ingest", mqtt_url="mqtt://b", mqtt_client_id="w1")
    assert named.client_id_for_role() == "w1"
    assert ControlPlaneSettings.load(None).client_id_for_role() == "parkwatch-control-plane"
    with pytest.raises(ConfigError, match="ingest_share_group"):
        ControlPlaneSettings.load(None, ingest_share_group="a/b")


def test_the_control_lane_logs_in_with_an_account_of_its_own_or_not_at_all() -> None:
    """Under use_username_as_clientid two connections of one account oust each other."""
    url = "mqtt://b:1883"
    anonymous = ControlPlaneSettings.load(None, role="ingest", mqtt_url=url)
    assert anonymous.control_lane_security() == anonymous.mqtt_security()
    for logs_in in ({"mqtt_username": "cp"}, {"mqtt_url": "mqtt://cp:pw@b:1883"}):
        s = ControlPlaneSettings.load(None, **{"role": "ingest", "mqtt_url": url, **logs_in})
        assert s.control_lane_security() is None
    own = ControlPlaneSettings.load(None, role="ingest", mqtt_url=url, mqtt_username="cp",
                                    mqtt_control_username="cp-control",
                                    mqtt_control_password="pw2", mqtt_ca_file=None)
    lane = own.control_lane_security()
    assert lane is not None and (lane.username, lane.password) == ("cp-control", "pw2")
    off = ControlPlaneSettings.load(None, role="ingest", mqtt_url=url, ingest_control_lane=False)
    assert off.control_lane_security() is None


def test_filter_parsing() -> None:
    assert parse_min_metrics(["accuracy:0.9", "macro_f1:1e-1"]) == {
        "accuracy": 0.9, "macro_f1": 0.1}
    assert parse_selector(["park=p1", "cam=a=b", "empty="]) == {
        "park": "p1", "cam": "a=b", "empty": ""}
    for bad in ("accuracy", "accuracy:nan", ":1", "a b:1"):
        with pytest.raises(InvalidRequestError):
            parse_min_metrics([bad])
    for bad in ("park", "=x", "a b=1"):
        with pytest.raises(InvalidRequestError):
            parse_selector([bad])


def test_state_machines_end_in_final_states() -> None:
    assert {"succeeded", "failed", "cancelled"} == FINAL
    assert not any(JOB.allows(s, e) for s in FINAL for e in JOB.moves)
    assert not JOB.can_move("queued", "succeeded")  # a job must run first
    assert JOB.next("running", "report_progress") == "running"
    assert ALERT.final() == {"resolved"}


def test_reported_release_ids() -> None:
    reported = {"active": {"release_id": "r2"}, "shadow": {"release_id": "r3"},
                "previous_release_id": "r1", "last_transition": None}
    assert reported_release_ids(reported) == {"r1", "r2", "r3"}
    assert reported_release_ids(None) == set()
    assert reported_release_ids({"active": "garbage"}) == set()
