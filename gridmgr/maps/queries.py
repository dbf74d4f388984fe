"""Map queries the pages call: where a map opens (extents) and the small lookups around it."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.workflow import SUPERVISOR_CELLS


class Extent(NamedTuple):
    """A box in WGS84: west, south, east, north (lon/lat, GeoJSON order)."""

    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float

    def corners(self) -> list[list[float]]:
        """[[south, west], [north, east]], Leaflet's bounds, to 1 cm (no float noise in a page)."""
        x0, y0, x1, y1 = (round(v, 7) for v in self)
        return [[y0, x0], [y1, x1]]

    def box(self) -> list[float]:
        """[lon_min, lat_min, lon_max, lat_max]."""
        return list(self)


def _extent(conn: Connection, rows: str, params: dict[str, Any] | None = None) -> Extent | None:
    """The extent of `geom` over `rows` (a FROM … WHERE clause), None when there are none."""
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent(geom)::geometry AS e FROM {rows}) s"
        ),
        params or {},
    ).first()
    if row is None or row[0] is None:
        return None
    return Extent(*(float(v) for v in row))


def district_extent(conn: Connection) -> Extent | None:
    """The loaded districts' extent."""
    return _extent(conn, "regions WHERE level = 'district'")


def cell_extent(conn: Connection, area: str | None = None) -> Extent | None:
    """The open cells' extent, within an area (a district, street or community code prefix) if given."""
    return _extent(
        conn,
        "grid_cells WHERE valid_to IS NULL AND (CAST(:area AS text) IS NULL OR code LIKE CAST(:area AS text) || '%')",
        {"area": area},
    )


def supervisor_extent(conn: Connection, person_id: int) -> Extent | None:
    """The extent of a supervisor's open cells (their duty grids)."""
    return _extent(
        conn, f"grid_cells WHERE valid_to IS NULL AND id IN ({SUPERVISOR_CELLS})", {"scope_person": person_id}
    )


def areas(conn: Connection) -> list[dict[str, Any]]:
    """Districts and streets (level, code, name), for an area filter."""
    rows = conn.execute(
        text("SELECT level, code, name FROM regions WHERE level IN ('district', 'street') ORDER BY code")
    ).mappings()
    return [dict(r) for r in rows]


def duty_grid_cells(conn: Connection, by: str) -> list[tuple[str, str]]:
    """(open cell code, its duty grid's code or, by "supervisor", its supervisor's code); a cell in two grids: the
    first by code."""
    key = {"supervisor": "p.code", "duty_grid": "g.code"}[by]
    rows = conn.execute(
        text(f"""
        SELECT c.code, min({key}) FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id
        JOIN people p ON p.id = g.supervisor_id JOIN grid_cells c ON c.id = dc.cell_id AND c.valid_to IS NULL
        GROUP BY c.code""")
    ).all()
    return [(cell, obj) for cell, obj in rows]
