"""Reporting a new case (信息收集): one entry for pages, the API, Open311 and layer rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import Actor, first_step, record, step_limit
from gridmgr.codes import CASE_SOURCES, URGENCIES
from gridmgr.errors import InputError
from gridmgr.geo import crs as crsmod
from gridmgr.grid.assign import cell_join
from gridmgr.grid.regions import city_extent

MAX_DESCRIPTION = 2000
MAX_ADDRESS = 300


@dataclass
class NewCase:
    """What a reporter gives: where, what, how urgent, and in their words."""

    category: str
    lon: float
    lat: float
    source: str
    description: str = ""
    address: str = ""
    urgency: str = "normal"
    photos: tuple[str, ...] = ()
    crs: str = "wgs84"


def report(conn: Connection, actor: Actor, new: NewCase, *, now: datetime, calendar: WorkCalendar) -> int:
    """Create a `reported` case in its cell with its first deadline and audit event; returns its id."""
    if new.source not in CASE_SOURCES:
        raise InputError(f"{new.source!r} is not one of {', '.join(CASE_SOURCES)}", field="source")
    if new.urgency not in URGENCIES:
        raise InputError(f"{new.urgency!r} is not one of {', '.join(URGENCIES)}", field="urgency")
    if len(new.description) > MAX_DESCRIPTION:
        raise InputError(f"is longer than {MAX_DESCRIPTION} characters", field="description")
    if len(new.address) > MAX_ADDRESS:
        raise InputError(f"is longer than {MAX_ADDRESS} characters", field="address")
    known = conn.execute(text("SELECT 1 FROM categories WHERE code = :c"), {"c": new.category}).scalar()
    if not known:
        raise InputError(f"unknown category {new.category!r}", field="category")
    x, y = crsmod.to_wgs84([new.lon], [new.lat], new.crs)
    crsmod.check_points(x, y, city_extent(conn), records=["the location"])
    step = first_step(new.source)
    deadline = calendar.add_working_time(now, step_limit(conn, new.category, step, new.urgency))
    case_id = conn.execute(
        text(f"""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, urgency, reported_at, description,
                           address, photos, status, deadline, deadline_step, step_started_at, reporter_user_id)
        SELECT p.g, c.cell_id,
               to_char(CAST(:now AS timestamptz) AT TIME ZONE 'Asia/Shanghai', 'YYYY')
                 || lpad(nextval('case_no_seq')::text, 7, '0'),
               :cat, :src, :urg, :now, :descr, :addr, :photos, 'reported', :dl, :step, :now, :reporter
        FROM (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS g) p {cell_join("p.g", "CAST(:now AS timestamptz)")}
        RETURNING id
    """),
        {
            "x": float(x[0]),
            "y": float(y[0]),
            "cat": new.category,
            "src": new.source,
            "urg": new.urgency,
            "now": now,
            "descr": new.description or None,
            "addr": new.address or None,
            "photos": list(new.photos),
            "dl": deadline,
            "step": step,
            "reporter": actor.user_id,
        },
    ).scalar_one()  # INSERT ... SELECT from one row ... RETURNING: one row
    record(
        conn,
        case_id,
        actor,
        "report",
        None,
        "reported",
        now,
        note=new.description or None,
        deadline_after=deadline,
        photos=list(new.photos),
    )
    return case_id
