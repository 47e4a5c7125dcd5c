"""The dashboard's fleet page in one answer (``GET /fleet/page``).

The page showed four calls' answers (``/fleet``, ``/devices?limit=100``, the open alerts'
and the dead letters' totals), each a request with its own authentication and its own
statements: about sixteen round trips to the database per page load, every one a wait for
a core on a busy host. Here the page is three statements: the newest windows' chart
points, the device table's page, and one statement for the three totals. The device
figures come as kept by the API (``api/fleet_counts.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..schemas import DevicePublic, FleetPage, Page
from ..store.models import Alert, DeadLetter, Device
from . import devices, fleet_summary
from .fleet_summary import FleetCounts


def _totals(session: Session) -> tuple[int, int, int]:
    """Devices, open alerts and dead letters, counted in one statement (each an index or
    a table count, milliseconds at 10,000 devices)."""
    def total(table: type, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
        return sa.select(func.count()).select_from(table).where(*where).scalar_subquery()

    row = session.execute(sa.select(total(Device), total(Alert, col(Alert.state) == "open"),
                                    total(DeadLetter))).one()
    return int(row[0]), int(row[1]), int(row[2])


def fleet_page(session: Session, *, windows: int, limit: int, offset: int,
               counts: FleetCounts | None = None) -> FleetPage:
    """The fleet page: figures (``counts``, counted now when None), the newest ``windows``
    chart points, devices ``offset``..``offset + limit`` by id and the page's totals."""
    summary = fleet_summary.fleet_summary(session, windows=windows, counts=counts)
    device_total, open_alerts, dead_letters = _totals(session)
    rows = session.exec(select(Device).order_by(col(Device.device_id))
                        .offset(offset).limit(limit)).all()
    page: Page[DevicePublic] = Page(items=[devices.device_public(r) for r in rows],
                                    total=device_total, limit=limit, offset=offset)
    return FleetPage(fleet=summary, devices=page, open_alerts=open_alerts,
                     dead_letters=dead_letters)
