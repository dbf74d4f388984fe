"""The Curbs API feed (Curb Data Specification, CDS 1.1): the published parking zones, old versions too."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.codes import TZ
from gridmgr.layers.parking.checks import DEPTH_M, footprint_sql
from gridmgr.layers.parking.zones import today

# the CDS names of our keys; `both` has none (the field is left out)
CDS_SIDES = {"north": "N", "south": "S", "east": "E", "west": "W"}
CDS_NAMESPACE = uuid.UUID("6f1c3a52-9a0e-4d4b-8c53-2f3b7c1d9e41")  # curb_zone_id = uuid5(this, "zone:<id>")


def curb_zone_id(zone_id: int) -> str:
    """The CDS curb_zone_id of a zone (a UUID, stable for the zone's id)."""
    return str(uuid.uuid5(CDS_NAMESPACE, f"zone:{zone_id}"))


def _ms(moment: datetime | date | None) -> int | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0), TZ)
    return int(moment.timestamp() * 1000)


def cds_zones(
    conn: Connection,
    *,
    now: datetime,
    at: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_geometry: bool = True,
) -> dict:
    """The Curbs API `/curbs/zones` payload (Curb Data Specification): published zones, old versions too.

    Published: approved, painted, and retired after publication (a draft retired is no zone). `at`
    keeps the zones valid then. Geometry is the zone's footprint polygon (CDS zones are polygons).
    """
    published = (
        "(z.status IN ('approved', 'painted') OR (z.status = 'retired' AND NOT EXISTS ("
        "SELECT 1 FROM parking_zone_events e WHERE e.zone_id = z.id AND e.to_status = 'retired' "
        "AND e.from_status IN ('draft', 'submitted'))))"
    )
    where, params = [published], {}
    if at is not None:
        where.append("daterange(z.valid_from, z.valid_to, '[)') @> CAST(:day AS date)")
        params["day"] = today(at)
    if bbox:
        where.append("z.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    rows = conn.execute(
        text(f"""
        SELECT z.id, z.zone_no, z.name, z.street_name, z.street_side, z.parking_angle, z.capacity, z.valid_from,
               z.valid_to, z.length_m, ST_Dimension(z.geom) AS dim, z.created_at,
               ST_AsGeoJSON({footprint_sql("z.geom", "z.parking_angle", "z.street_side")}, 7)::json AS geometry,
               (SELECT min(e.at) FROM parking_zone_events e WHERE e.zone_id = z.id AND e.action = 'approve') AS published,
               (SELECT max(e.at) FROM parking_zone_events e WHERE e.zone_id = z.id) AS updated,
               ARRAY(WITH RECURSIVE back AS (SELECT p.id, p.prev_zone_id, 1 AS depth FROM parking_zones p
                                             WHERE p.id = z.prev_zone_id
                       UNION ALL SELECT p.id, p.prev_zone_id, b.depth + 1 FROM parking_zones p
                                 JOIN back b ON p.id = b.prev_zone_id)
                     SELECT id FROM back ORDER BY depth) AS prev_ids
        FROM parking_zones z WHERE {" AND ".join(where)} ORDER BY z.id
    """),
        params,
    ).mappings()
    zones = []
    for r in rows:
        published = r["published"] or r["created_at"]
        z = {
            "curb_zone_id": curb_zone_id(r["id"]),
            "curb_policy_ids": [],
            "published_date": _ms(published),
            "last_updated_date": _ms(r["updated"] or published),
            "prev_curb_zone_ids": [curb_zone_id(i) for i in r["prev_ids"]],
            "start_date": _ms(r["valid_from"] or published),
            "name": r["name"],
            "user_zone_id": r["zone_no"],
            "street_name": r["street_name"],
            "parking_angle": "angled" if r["parking_angle"].startswith("angled") else r["parking_angle"],
            "num_spaces": r["capacity"],
        }
        if include_geometry:
            z["geometry"] = r["geometry"]
        if r["valid_to"] is not None:
            z["end_date"] = _ms(r["valid_to"])
        if r["street_side"] in CDS_SIDES:
            z["street_side"] = CDS_SIDES[r["street_side"]]
        if r["dim"] == 1:
            z["length"] = round(r["length_m"] * 100) if r["length_m"] is not None else None
            z["width"] = round(DEPTH_M[r["parking_angle"]] * 100)
        zones.append({k: v for k, v in z.items() if v is not None})
    return {
        "version": "1.1.0",
        "time_zone": "Asia/Shanghai",
        "currency": "CNY",
        "last_updated": _ms(now),
        "data": {"zones": zones},
    }
