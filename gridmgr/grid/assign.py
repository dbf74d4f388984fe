"""Assignment of features to cells: the one rule (SQL `cell_for`/`cell_shares`) and its callers.

The rule itself lives in the SQL functions of migration 0001; this module only builds statements
around them, so imports, the API, `locate` and re-assignment cannot disagree:
- a point goes to the cell covering it that is valid at the feature's time; a point on a shared
  edge or vertex goes to the covering cell with the lowest code;
- a line or polygon goes to the cell with the largest overlap (length or area on the ground),
  ties to the lowest code; `cell_shares` lists every intersecting cell with its share;
- a feature in no cell keeps `cell_id` NULL (out of grid): kept and reported, never dropped.
Bulk imports of points reach the same rule through a tile table (`point_cell_join`), tested equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import NotFound
from gridmgr.geo import crs as crsmod
from gridmgr.grid.regions import city_extent
from gridmgr.plugins.registry import layers


def cell_join(geom_sql: str, at_sql: str = "now()", alias: str = "c") -> str:
    """The SQL join that gives each row its cell: `LEFT JOIN LATERAL cell_for(geom, at) AS c ON true`."""
    return f"LEFT JOIN LATERAL cell_for({geom_sql}, {at_sql}) AS {alias} ON true"


# Bulk point assignment (imports): the same rule as `cell_for` for points, reached by an equality
# join on a square tile key instead of one GiST probe per row (~4× faster on 10⁶ points). Each cell
# is listed under every tile its bounding box touches; a point looks only at its own tile's cells,
# then applies cell_for's predicates (intersects, valid at the row's time) and its order (lowest
# code). A covering cell's box contains the point, so floor(x / size) of the point lies between
# those of the box's edges (division and floor are monotone): the cell is always among the listed.
# Below BULK_MIN_ROWS rows building the tile table costs more than the probes it saves.
BULK_MIN_ROWS = 5_000
TILES = "pg_temp.cell_tiles"


def prepare_point_tiles(conn: Connection, size: float | None = None) -> float:
    """Build the tile table of every cell (all versions) for `point_cell_join`; returns the tile size in degrees."""
    if size is None:
        size = _median_cell_size(conn)
    conn.execute(text(f"DROP TABLE IF EXISTS {TILES}"))
    conn.execute(
        text(f"""
        CREATE TEMP TABLE cell_tiles ON COMMIT DROP AS
        SELECT tx, ty, c.code, c.id AS cell_id, c.valid_from, c.valid_to, c.geom,
               ST_XMin(c.geom) AS x0, ST_XMax(c.geom) AS x1, ST_YMin(c.geom) AS y0, ST_YMax(c.geom) AS y1
        FROM grid_cells c,
             generate_series(floor(ST_XMin(c.geom) / {size!r})::int, floor(ST_XMax(c.geom) / {size!r})::int) tx,
             generate_series(floor(ST_YMin(c.geom) / {size!r})::int, floor(ST_YMax(c.geom) / {size!r})::int) ty""")
    )
    conn.execute(text(f"CREATE INDEX ON {TILES} (tx, ty, code)"))
    conn.execute(text(f"ANALYZE {TILES}"))
    return size


def _median_cell_size(conn: Connection) -> float:
    # about one cell per tile: a tile then lists ~4 cells whatever the grid's cell size
    size = conn.execute(
        text("""
        SELECT percentile_cont(0.5) WITHIN GROUP (
          ORDER BY sqrt((ST_XMax(geom) - ST_XMin(geom)) * (ST_YMax(geom) - ST_YMin(geom))))
        FROM grid_cells""")
    ).scalar()
    return float(size) if size and size > 1e-7 else 0.01


def point_cell_join(lon_sql: str, lat_sql: str, at_sql: str, size: float, alias: str = "c") -> str:
    """`cell_join` for points given as lon/lat expressions, through the table of `prepare_point_tiles`."""
    lon, lat, at = f"({lon_sql})", f"({lat_sql})", f"({at_sql})"
    return f"""LEFT JOIN LATERAL (
        SELECT t.cell_id FROM {TILES} t
        WHERE t.tx = floor({lon} / {size!r})::int AND t.ty = floor({lat} / {size!r})::int
          AND {lon} BETWEEN t.x0 AND t.x1 AND {lat} BETWEEN t.y0 AND t.y1
          AND t.valid_from <= {at} AND (t.valid_to IS NULL OR {at} < t.valid_to)
          AND ST_Intersects(t.geom, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))
        ORDER BY t.code LIMIT 1) AS {alias} ON true"""


def shares_join(geom_sql: str, at_sql: str = "now()", alias: str = "s") -> str:
    """The SQL join listing every cell a row touches with its share (polygons and lines)."""
    return f"JOIN LATERAL cell_shares({geom_sql}, {at_sql}) AS {alias} ON true"


@dataclass
class CellInfo:
    """A cell with its place in the hierarchy and the people and units answerable for it."""

    id: int
    code: str
    area_m2: float
    valid_from: datetime
    valid_to: datetime | None
    community: tuple[str, str]  # (code, name)
    street: tuple[str, str] | None
    district: tuple[str, str] | None
    units: list[dict] = field(default_factory=list)  # duty, code, name, kind, phone
    people: list[dict] = field(default_factory=list)  # post, code, name, phone
    duty_grids: list[dict] = field(default_factory=list)


def cell_id_at(conn: Connection, lon: float, lat: float, at: datetime | None = None) -> int | None:
    """The id of the cell covering a WGS84 point at a moment (now by default), or None."""
    return conn.execute(
        text(
            "SELECT cell_id FROM cell_for(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), "
            "COALESCE(CAST(:at AS timestamptz), now()))"
        ),
        {"lon": lon, "lat": lat, "at": at},
    ).scalar()


def describe_cell(conn: Connection, cell_id: int) -> CellInfo:
    """Everything `locate` and the cell pages say about one cell."""
    row = (
        conn.execute(
            text("""
        SELECT c.id, c.code, c.area_m2, c.valid_from, c.valid_to,
               cm.code AS cm_code, cm.name AS cm_name, cm.level AS cm_level,
               st.code AS st_code, st.name AS st_name, d.code AS d_code, d.name AS d_name
        FROM grid_cells c
        JOIN regions cm ON cm.id = c.community_id
        LEFT JOIN regions st ON st.id = cm.parent_id
        LEFT JOIN regions d ON d.id = st.parent_id
        WHERE c.id = :id
    """),
            {"id": cell_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no cell with id {cell_id}")
    info = CellInfo(
        row["id"],
        row["code"],
        row["area_m2"],
        row["valid_from"],
        row["valid_to"],
        (row["cm_code"], row["cm_name"]),
        (row["st_code"], row["st_name"]) if row["st_code"] else None,
        (row["d_code"], row["d_name"]) if row["d_code"] else None,
    )
    if row["cm_level"] == "district":  # a district gridded without communities
        info.district, info.street = info.community, None
    info.units = [
        dict(r)
        for r in conn.execute(
            text("""
        SELECT cu.duty, u.code, u.name, u.kind, u.phone FROM cell_units cu JOIN units u ON u.id = cu.unit_id
        WHERE cu.cell_id = :id ORDER BY array_position(
            ARRAY['territorial','enforcement','sanitation','maintenance','other']::text[], cu.duty::text)
    """),
            {"id": cell_id},
        ).mappings()
    ]
    info.people = [
        dict(r)
        for r in conn.execute(
            text("""
        SELECT cp.post, p.code, p.name, p.phone FROM cell_people cp JOIN people p ON p.id = cp.person_id
        WHERE cp.cell_id = :id ORDER BY array_position(
            ARRAY['grid_leader','grid_officer','supervisor']::text[], cp.post::text), p.code
    """),
            {"id": cell_id},
        ).mappings()
    ]
    info.duty_grids = [
        dict(r)
        for r in conn.execute(
            text("""
        SELECT g.code, g.name FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id
        WHERE dc.cell_id = :id ORDER BY g.code
    """),
            {"id": cell_id},
        ).mappings()
    ]
    return info


def locate(conn: Connection, lon: float, lat: float, crs: str = "wgs84", at: datetime | None = None) -> CellInfo:
    """The cell (with its people and units) covering a point given in any supported CRS."""
    x, y = crsmod.to_wgs84([lon], [lat], crs)
    crsmod.check_points(x, y, city_extent(conn), records=["input"])
    cell_id = cell_id_at(conn, float(x[0]), float(y[0]), at)
    if cell_id is None:
        when = f" at {at.isoformat()}" if at else ""
        raise NotFound(f"point ({float(x[0]):.6f}, {float(y[0]):.6f}) is in no cell{when}: outside the grid")
    return describe_cell(conn, cell_id)


@dataclass
class Pending:
    """Features of a layer that a grid change left behind: in closed cells, or out of the grid."""

    layer: str
    in_closed_cells: int
    out_of_grid: int


# a feature is stale when its cell was closed by a newer grid, or when it has no cell at all
STALE = (
    "(f.cell_id IS NULL OR EXISTS (SELECT 1 FROM grid_cells oc WHERE oc.id = f.cell_id "
    "AND oc.valid_to IS NOT NULL AND oc.valid_to <= :at))"
)


def pending(conn: Connection, at: datetime | None = None) -> list[Pending]:
    """Per layer, how many features sit in closed cells or in no cell (what --reassign would look at)."""
    out = []
    for layer in layers(spatial=True):
        t = layer.table.name
        row = conn.execute(
            text(f"""
            SELECT count(*) FILTER (WHERE f.cell_id IS NOT NULL), count(*) FILTER (WHERE f.cell_id IS NULL)
            FROM {t} f WHERE {STALE}
        """),
            {"at": at or datetime.now().astimezone()},
        ).one()  # an aggregate without GROUP BY: always one row
        out.append(Pending(layer.name, row[0], row[1]))
    return out


def reassign(
    conn: Connection, actor: str, *, layer_names: list[str] | None = None, at: datetime | None = None
) -> dict[str, int]:
    """Move features in closed cells (or out of the grid) to the cell valid at `at`; log every move.

    One set-based statement per layer; each move writes a `cell_reassignments` row in the same
    transaction. Features whose new cell would be none stay where they are.
    """
    at = at or datetime.now().astimezone()
    moved = {}
    for layer in layers(spatial=True):
        if layer_names and layer.name not in layer_names:
            continue
        t = layer.table.name
        n = conn.execute(
            text(f"""
            WITH m AS (
              SELECT f.id, f.cell_id AS old, c.cell_id AS new
              FROM {t} f {cell_join("f.geom", ":at")}
              WHERE {STALE} AND c.cell_id IS NOT NULL
                AND c.cell_id IS DISTINCT FROM f.cell_id
            ), u AS (
              UPDATE {t} f SET cell_id = m.new FROM m WHERE f.id = m.id RETURNING f.id
            )
            INSERT INTO cell_reassignments (actor, layer, feature_id, from_cell_id, to_cell_id, at)
            SELECT :actor, :layer, m.id, m.old, m.new, :at FROM m JOIN u ON u.id = m.id
            RETURNING 1
        """),
            {"at": at, "actor": actor, "layer": layer.name},
        ).rowcount
        hook = layer.extras.get("after_reassign")
        if hook and n:
            hook(conn, at)
        moved[layer.name] = n
    return moved
