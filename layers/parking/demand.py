"""Demand for parking (停车需求): illegal-parking cases near a drawn zone, cells short of spaces, the drawing preview.

Reads only: the checks are gridmgr.layers.parking.checks' and the writes gridmgr.layers.parking.zones's; the
preview runs the checks
without storing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError
from gridmgr.grid.regions import city_extent
from gridmgr.layers.parking.checks import GEOM, LOT_ANGLE, check_zone, construction_warnings, measure
from gridmgr.layers.parking.zone_input import LAYER, Refusal, field_value, parse_geometry, zone_fields
from gridmgr.layers.parking.zones import PUBLISHED, cell_summary, local_time, today, zone_versions

ILLEGAL_PARKING = "0505"  # 机动车乱停放
EVIDENCE_DAYS = 90
DISTANCE_CHOICES = (50, 100, 200, 500)
DEFAULT_DISTANCE_M, MAX_DISTANCE_M = 100, 1000
MAX_CASE_POINTS = 500


def preview(conn: Connection, body: Any, *, now: datetime) -> dict:
    """What the page shows while drawing: the measure, every rule it breaks, warnings and demand evidence.

    The body is {geometry, parking_angle, street_side, valid_from, valid_to, zone_id, distance_m}; zone_id
    (an edited zone) leaves the zone itself and its versions out of the overlap check.
    """
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", field="body")
    fields = zone_fields()
    v = {k: field_value(fields[k], body.get(k)) for k in ("parking_angle", "street_side", "valid_from", "valid_to")}
    zone_id, distance = body.get("zone_id"), body.get("distance_m", DEFAULT_DISTANCE_M)
    for name, value in (("zone_id", zone_id), ("distance_m", distance)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InputError("must be a whole number", field=name)
    try:
        g = parse_geometry(body.get("geometry"), city_extent(conn))
    except Refusal as exc:
        return {"measure": None, "problems": _problems(exc), "warnings": [], "evidence": None}
    angle = v["parking_angle"] or (LOT_ANGLE if g.geom_type == "Polygon" else "parallel")
    wkb = shapely.to_wkb(g, hex=True)
    exclude = zone_versions(conn, zone_id) if zone_id is not None else ()
    problems: list[dict] = []
    try:
        check_zone(
            conn, wkb, angle, v["street_side"], v["valid_from"], v["valid_to"], at=now, exclude=exclude, confirm=True
        )
    except Refusal as exc:
        problems = _problems(exc)
    return {
        "measure": measure(conn, wkb, angle).as_dict(),
        "problems": problems,
        "warnings": construction_warnings(conn, wkb, angle, v["street_side"]),
        "evidence": evidence(conn, wkb, now=now, distance_m=distance, exclude_zone=zone_id),
    }


def _problems(exc: Refusal) -> list[dict]:
    return [{"rule": p.rule, "message": p.message, "conflicts": p.conflicts} for p in exc.problems]


def _near(column: str, geom: str, distance: str) -> str:
    """`column` within `distance` metres of `geom` on the ground, with an index-friendly box first."""
    return (
        f"{column} && ST_Expand({geom}, {distance} / 111320.0 / cos(radians(least(ST_Y(ST_Centroid({geom})), 85))),"
        f" {distance} / 111320.0) AND ST_DWithin({column}::geography, {geom}::geography, {distance})"
    )


def evidence(
    conn: Connection, wkb: str, *, now: datetime, distance_m: int = DEFAULT_DISTANCE_M, exclude_zone: int | None = None
) -> dict:
    """Around a drawn zone: 0505 cases within a distance over the last 90 days, the zones and spaces
    nearby with their capacity, and the cells it touches with their responsible units."""
    if not 1 <= distance_m <= MAX_DISTANCE_M:
        raise InputError(f"must be 1…{MAX_DISTANCE_M} m", field="distance_m")
    since = now - timedelta(days=EVIDENCE_DAYS)
    p = {
        "wkb": wkb,
        "d": float(distance_m),
        "since": since,
        "now": now,
        "cat": ILLEGAL_PARKING,
        "today": today(now),
        "self": exclude_zone,
        "limit": MAX_CASE_POINTS,
    }
    g = f"(SELECT {GEOM})"
    cases = conn.execute(
        text(f"""
        SELECT count(*) FROM cases f WHERE f.category_code = :cat AND f.reported_at >= :since AND f.reported_at < :now
          AND {_near("f.geom", g, ":d")}
    """),
        p,
    ).scalar()
    points = [
        {**r, "reported_at": local_time(r["reported_at"])}
        for r in conn.execute(
            text(f"""
        SELECT f.id, f.case_no, f.status, f.reported_at, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat FROM cases f
        WHERE f.category_code = :cat AND f.reported_at >= :since AND f.reported_at < :now AND {_near("f.geom", g, ":d")}
        ORDER BY f.reported_at DESC LIMIT :limit
    """),
            p,
        ).mappings()
    ]
    zones = [
        dict(r)
        for r in conn.execute(
            text(f"""
        SELECT z.id, z.zone_no, z.name, z.status, z.parking_angle, z.capacity,
               round(ST_Distance(z.geom::geography, {g}::geography)::numeric, 1)::float AS distance_m
        FROM parking_zones z
        WHERE {_near("z.geom", g, ":d")} AND z.status <> 'retired'
          AND (z.valid_to IS NULL OR z.valid_to > :today) AND z.id IS DISTINCT FROM :self
        ORDER BY distance_m, z.id
    """),
            p,
        ).mappings()
    ]
    spaces = conn.execute(
        text(f"""
        SELECT count(*) FROM parking_spaces s WHERE {_near("s.geom", g, ":d")}
    """),
        p,
    ).scalar()
    cells = conn.execute(text(f"SELECT s.cell_id, s.share FROM cell_shares({g}, :now) AS s WHERE s.share > 0"), p).all()
    outlines = dict(
        conn.execute(
            text("SELECT id, ST_AsGeoJSON(geom, 7)::json FROM grid_cells WHERE id = ANY(:ids)"),
            {"ids": [cid for cid, _ in cells]},
        ).all()
    )
    supply = sum(z["capacity"] or 0 for z in zones if z["status"] in PUBLISHED)
    return {
        "distance_m": distance_m,
        "days": EVIDENCE_DAYS,
        "since": local_time(since),
        "category": ILLEGAL_PARKING,
        "cases": cases,
        "case_points": points,
        "zones": zones,
        "spaces": spaces,
        "capacity_nearby": supply,
        "cells": sorted(
            (cell_summary(conn, cid, share) | {"geometry": outlines.get(cid)} for cid, share in cells),
            key=lambda c: (-c["share"], c["code"]),
        ),
    }


def overview(conn: Connection, *, now: datetime, limit: int = 50) -> list[dict]:
    """Cells ranked by 0505 cases of the last 90 days per existing space (demand without supply).

    Spaces are the capacity of the zones in force (approved or painted), split over their cells by
    share; the ratio divides by spaces + 1 so that a cell without any space still ranks by its cases.
    """
    rows = conn.execute(
        text("""
        WITH demand AS (
          SELECT cell_id, count(*) AS cases FROM cases
          WHERE category_code = :cat AND reported_at >= :since AND reported_at < :now AND cell_id IS NOT NULL
          GROUP BY cell_id),
        supply AS (
          SELECT COALESCE(fc.cell_id, z.cell_id) AS cell_id, sum(z.capacity * COALESCE(fc.share, 1)) AS spaces
          FROM parking_zones z LEFT JOIN feature_cells fc ON fc.layer = :layer AND fc.feature_id = z.id
          WHERE z.status IN ('approved', 'painted') AND (z.valid_from IS NULL OR z.valid_from <= :today)
            AND (z.valid_to IS NULL OR z.valid_to > :today)
          GROUP BY 1)
        SELECT c.id, c.code, cm.name AS community, st.name AS street, d.cases,
               round(COALESCE(s.spaces, 0)::numeric, 1)::float AS spaces,
               round((d.cases / (COALESCE(s.spaces, 0) + 1))::numeric, 2)::float AS cases_per_space
        FROM demand d JOIN grid_cells c ON c.id = d.cell_id
        JOIN regions cm ON cm.id = c.community_id LEFT JOIN regions st ON st.id = cm.parent_id
        LEFT JOIN supply s ON s.cell_id = d.cell_id
        ORDER BY cases_per_space DESC, d.cases DESC, c.code LIMIT :limit
    """),
        {
            "cat": ILLEGAL_PARKING,
            "since": now - timedelta(days=EVIDENCE_DAYS),
            "now": now,
            "today": today(now),
            "layer": LAYER,
            "limit": limit,
        },
    ).mappings()
    return [dict(r) for r in rows]
