"""The administrative hierarchy: import districts, streets and communities; the city extent."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.db.models import CODE_LENGTH, REGION_LEVELS
from gridmgr.errors import ConfigError, InputError
from gridmgr.geo import crs as crsmod
from gridmgr.geo.gisfile import Feature, check_polygon

PARENT_LEVEL = {"street": "district", "community": "street"}
# the extent is the loaded districts' bounds plus this margin, so edge features are still accepted
EXTENT_MARGIN_DEG = 0.05


@dataclass
class RegionRow:
    """A region ready to store: full code, name, parent code, WKB polygon."""

    code: str
    name: str
    parent_code: str | None
    wkb: bytes


def prepare(
    features: list[Feature],
    level: str,
    code_field: str = "code",
    name_field: str = "name",
    parent_field: str | None = None,
) -> list[RegionRow]:
    """Validate features as regions of one level; every problem names the feature and the field."""
    if level not in REGION_LEVELS:
        raise InputError(f"unknown level {level!r}; use one of {', '.join(REGION_LEVELS)}")
    want = CODE_LENGTH[level]
    rows: list[RegionRow] = []
    seen: dict[str, str] = {}
    for f in features:
        raw = f.props.get(code_field)
        if raw is None or str(raw).strip() == "":
            raise InputError("is missing", record=f.record, field=code_field)
        code = str(raw).strip()
        if isinstance(raw, float) and raw.is_integer():
            code = str(int(raw))
        parent = None
        if parent_field:
            p = f.props.get(parent_field)
            parent = None if p is None else str(p).strip()
        # a short local code (3 digits) is completed with its parent's code
        if level != "district" and len(code) == 3 and parent:
            code = parent + code
        if not code.isdigit() or len(code) != want:
            raise InputError(f"{code!r} is not a {want}-digit {level} code", record=f.record, field=code_field)
        if level != "district":
            parent = parent or code[: CODE_LENGTH[PARENT_LEVEL[level]]]
            if code[: len(parent)] != parent:
                raise InputError(
                    f"code {code} does not start with its parent's code {parent}", record=f.record, field=code_field
                )
        if code in seen:
            raise InputError(f"duplicate code {code} (also {seen[code]})", record=f.record, field=code_field)
        seen[code] = f.record
        name = f.props.get(name_field)
        if not name:
            raise InputError("is missing", record=f.record, field=name_field)
        geom = check_polygon(f)
        rows.append(RegionRow(code, str(name), parent, geom.wkb))
    return rows


def store(conn: Connection, rows: list[RegionRow], level: str) -> tuple[int, int]:
    """Insert or update regions by code in the caller's transaction; returns (inserted, updated)."""
    inserted = updated = 0
    for r in rows:
        parent_id = None
        if r.parent_code:
            parent_id = conn.execute(
                text("SELECT id FROM regions WHERE code = :c AND level = :l"),
                {"c": r.parent_code, "l": PARENT_LEVEL[level]},
            ).scalar()
            if parent_id is None:
                raise InputError(
                    f"parent {PARENT_LEVEL[level]} {r.parent_code} is not loaded; import it first",
                    record=f"{level} {r.code}",
                    field="parent",
                )
        res = conn.execute(
            text("""
            INSERT INTO regions (level, code, name, parent_id, geom, area_m2)
            VALUES (:level, :code, :name, :parent,
                    ST_Multi(ST_GeomFromWKB(:wkb, 4326)), ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography))
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id,
                geom = EXCLUDED.geom, area_m2 = EXCLUDED.area_m2
              WHERE regions.level = EXCLUDED.level
            RETURNING (xmax = 0) AS inserted
        """),
            {"level": level, "code": r.code, "name": r.name, "parent": parent_id, "wkb": r.wkb},
        ).first()
        if res is None:
            raise InputError(
                f"code {r.code} already names a region of another level", record=f"{level} {r.code}", field="code"
            )
        inserted += bool(res.inserted)
        updated += not res.inserted
    return inserted, updated


def city_extent(conn: Connection) -> crsmod.Extent:
    """The extent coordinates must fall in: GRIDMGR_EXTENT, else the districts' bounds, else China."""
    env = os.environ.get("GRIDMGR_EXTENT")
    if env:
        try:
            return crsmod.Extent(*(float(v) for v in env.split(",")))
        except (TypeError, ValueError):
            raise ConfigError(f"GRIDMGR_EXTENT={env!r} is not lon_min,lat_min,lon_max,lat_max") from None
    box = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom)::geometry AS e FROM regions WHERE level = 'district') s"
        )
    ).first()
    if box is None or box[0] is None:
        return crsmod.CHINA
    m = EXTENT_MARGIN_DEG
    return crsmod.Extent(box[0] - m, box[1] - m, box[2] + m, box[3] + m)
