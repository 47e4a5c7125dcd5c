"""A message that fails to store alone is kept as a dead letter before it is acknowledged,
against a real Mosquitto and a real store (SQLite and PostgreSQL): the others of its batch
are stored, all are acknowledged, and a replay after the cause is fixed stores it.

Only the failure is faked: the store's own functions raise for one device, the way a bug
in the store path (a rollup that cannot add up one release's windows) did."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from control_plane.ingest import store as ingest_store
from control_plane.services import telemetry
from control_plane.services.device_messages import DeviceMessage, StatusReceipt, StoredRun
from control_plane.store.db import session_scope
from control_plane.store.models import Device, TelemetryWindowRecord
from control_plane.testing import telemetry_window
from parkwatch_cli import app as root_app
from protocols import (
    DeviceStatus,
    TelemetryWindow,
    encode,
    events_topic,
    status_topic,
    telemetry_topic,
)
from protocols.messages import DeviceEvent
from tests.conftest import Mosquitto, wait_for
from tests.integration import test_cp_ingest_batch as batch_tests
from tests.integration.test_cp_ingest_batch import (
    DEVICES,
    outcome,
    publisher,
    running_adapter,
)

pytestmark = pytest.mark.slow
engine = batch_tests.engine  # the store, with DEVICES (cam-0..4) registered
BROKEN = "cam-3"  # the device whose messages the store cannot write


def rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def break_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real store functions, raising (not transiently) for every message of BROKEN."""
    ingest_windows, store_run = telemetry.ingest_windows, ingest_store.store_run

    def windows(session: Session, batch: Sequence[TelemetryWindow], **kw: Any) -> Counter[str]:
        if any(w.device_id == BROKEN for w in batch):
            raise ValueError(f"rollup cannot add up a window of {BROKEN}\nsecond line")
        return ingest_windows(session, batch, **kw)

    def device_run(session: Session, messages: Sequence[DeviceMessage]) -> StoredRun:
        ids = [m.status.device_id if isinstance(m, StatusReceipt) else m.device_id
               for m in messages]
        if BROKEN in ids:
            raise KeyError(f"no row for {BROKEN}")
        return store_run(session, messages)

    monkeypatch.setattr(telemetry, "ingest_windows", windows)
    monkeypatch.setattr(ingest_store, "store_run", device_run)


def cli(args: list[str], url: str) -> tuple[int, str]:
    result = CliRunner().invoke(root_app, args, env={"PARKWATCH_DATABASE_URL": url})
    return result.exit_code, result.output


def test_failed_message_is_kept_acknowledged_and_replayed(
    engine: Engine, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    break_the_store(monkeypatch)
    kept, errors = outcome("telemetry", "dead_letter"), outcome("telemetry", "error")
    status = DeviceStatus(device_id=BROKEN, state="online")
    event = DeviceEvent(device_id=BROKEN, seq=1, kind="detection", at=status.at)
    sent_from = datetime.now(UTC)
    with running_adapter(engine, mosquitto, "cp-dead-letter") as adapter, \
            publisher(mosquitto) as send:
        infos = [send(telemetry_topic(d), encode(telemetry_window(d, s)))
                 for s in range(1, 4) for d in DEVICES]
        infos += [send(status_topic(BROKEN), encode(status)),
                  send(events_topic(BROKEN), encode(event))]
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: rows(engine, "dead_letter") == 5, what="the broken device's messages kept")
        wait_for(lambda: adapter.pipeline.held == 0, what="every message acknowledged")
        assert rows(engine, "telemetry_window") == 12  # the other devices' windows, all stored
    assert outcome("telemetry", "dead_letter") - kept == 3
    assert outcome("telemetry", "error") == errors

    code, text = cli(["dead-letters", "list", "--json"], url)
    assert code == 0, text
    items = json.loads(text)["items"]
    assert Counter(i["kind"] for i in items) == {"telemetry": 3, "status": 1, "events": 1}
    assert {i["device_id"] for i in items} == {BROKEN}
    assert items[0]["topic"] == telemetry_topic(BROKEN)
    assert items[0]["error"] == f"ValueError: rollup cannot add up a window of {BROKEN}"
    assert json.loads(items[0]["message"])["seq"] == 1
    assert datetime.fromisoformat(items[0]["received_at"]) >= sent_from

    # Still broken: every row stays, with the error of this attempt.
    code, text = cli(["dead-letters", "replay"], url)
    assert code == 1 and "0 done (none), 5 failed again" in text, text
    assert rows(engine, "dead_letter") == 5

    monkeypatch.undo()  # the bug is fixed
    code, text = cli(["dead-letters", "replay"], url)
    assert code == 0 and "5 done (1 applied, 4 stored), 0 failed again" in text, text
    assert rows(engine, "dead_letter") == 0
    assert rows(engine, "telemetry_window") == 15
    with session_scope(engine) as session:  # replayed windows keep their first receipt time
        first = [w.received_at for w in session.exec(
            select(TelemetryWindowRecord).where(TelemetryWindowRecord.device_id == BROKEN)
            .order_by(col(TelemetryWindowRecord.seq)))]
    assert first == [datetime.fromisoformat(i["received_at"])
                     for i in items if i["kind"] == "telemetry"]
    assert rows(engine, "device_event") == 1
    with session_scope(engine) as session:
        device = session.get(Device, BROKEN)
        assert device is not None and device.online
