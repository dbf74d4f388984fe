"""Map queries the pages call: where a map opens (extents) and the small lookups around it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.workflow import SUPERVISOR_CELLS, Actor, scope_filter
from gridmgr.plugins.registry import Layer


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


def _with_today(sql: str, params: dict[str, Any], today: date) -> dict[str, Any]:
    """`params` plus :today when the SQL asks for it (derived values such as a billboard's `expired`)."""
    return {**params, "today": today} if ":today" in sql else params


def rows(conn: Connection, sql: str, params: dict[str, Any], today: date) -> list[Any]:
    """The mapping rows of a statement the map builds from a layer's declaration (:today filled when asked)."""
    return list(conn.execute(text(sql), _with_today(sql, params, today)).mappings().all())


def cell_box(conn: Connection, cell_id: int) -> Extent | None:
    """One cell's bounding box."""
    row = conn.execute(
        text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grid_cells WHERE id = :id"),
        {"id": cell_id},
    ).first()
    return Extent(*(float(v) for v in row)) if row is not None and row[0] is not None else None


def cell_labels(conn: Connection, bbox: tuple[float, float, float, float], limit: int) -> list[Any]:
    """Codes and label points (code, lon, lat) of at most `limit` open cells in a bbox, by code."""
    return list(
        conn.execute(
            text("""
            SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat FROM (
              SELECT code, ST_PointOnSurface(geom) AS p FROM grid_cells
              WHERE valid_to IS NULL AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)
              ORDER BY code LIMIT :lim) s
        """),
            {"x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "lim": limit},
        ).all()
    )


def supervisor_cell_codes(conn: Connection, person_id: int) -> list[str]:
    """The codes of a supervisor's open cells."""
    sql = f"SELECT code FROM grid_cells WHERE valid_to IS NULL AND id IN ({SUPERVISOR_CELLS}) ORDER BY code"
    return list(conn.execute(text(sql), {"scope_person": person_id}).scalars().all())


def find_region(conn: Connection, where: str, params: dict[str, Any]) -> Any | None:
    """The best region matching `where` (an exact name first, then district, street, community), with its box."""
    return conn.execute(
        text(f"""
        SELECT level, code, name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
        FROM regions WHERE {where} ORDER BY (name = :q) DESC, array_position(
            ARRAY['district', 'street', 'community']::text[], level::text), code LIMIT 1
    """),
        params,
    ).first()


def case_summary(conn: Connection, case_id: int) -> Any | None:
    """A case's status and category names only: what a popup shows of a case out of the actor's scope."""
    return conn.execute(
        text(
            "SELECT f.status, c.name, c.name_en FROM cases f LEFT JOIN categories c "
            "ON c.code = f.category_code WHERE f.id = :id"
        ),
        {"id": case_id},
    ).first()


def neighbours(conn: Connection, cell_id: int) -> list[str]:
    """The codes of the open cells touching this one (edge or corner)."""
    return list(
        conn.execute(
            text("""
        SELECT n.code FROM grid_cells c JOIN grid_cells n ON n.geom && c.geom AND ST_Intersects(n.geom, c.geom)
        WHERE c.id = :id AND n.id <> c.id AND n.valid_to IS NULL ORDER BY n.code
    """),
            {"id": cell_id},
        )
        .scalars()
        .all()
    )


def recently_closed(conn: Connection, actor: Actor, cell_id: int, since: datetime, limit: int) -> list[dict[str, Any]]:
    """Cases of the cell closed since `since` that the actor may see, the latest first."""
    cond, params = scope_filter(actor, "f")
    return [
        dict(r)
        for r in conn.execute(
            text(f"""
        SELECT f.id, f.case_no, c.name AS category, c.name_en AS category_en, f.reported_at, f.description,
               e.closed_at
        FROM cases f
        JOIN LATERAL (SELECT max(at) AS closed_at FROM case_events WHERE case_id = f.id AND to_state = 'closed') e
          ON e.closed_at >= :since
        LEFT JOIN categories c ON c.code = f.category_code
        WHERE f.cell_id = :cell AND f.status = 'closed' AND ({cond})
        ORDER BY e.closed_at DESC, f.id DESC LIMIT :limit
    """),
            {**params, "cell": cell_id, "since": since, "limit": limit},
        ).mappings()
    ]


def features_in_cell(conn: Connection, layer: Layer, cell_id: int) -> int:
    """How many features of a layer a cell holds."""
    n: int = conn.execute(
        text(f"SELECT count(*) FROM {layer.table.name} WHERE cell_id = :c"), {"c": cell_id}
    ).scalar_one()
    return n
