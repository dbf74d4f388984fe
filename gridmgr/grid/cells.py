"""The unit grid (单元网格): generate square cells, import drawn cells, grid versions, topology checks.

Cells belong to a community and are coded 12-digit community + 3-digit sequence, numbered
west→east, north→south (docs/domain.md §1). A district with no community loaded yet is gridded as a
whole: its cells belong to the district's own region row and are coded 6-digit district + 9-digit
sequence; generating or importing over its communities later closes that district-wide grid.

Versions: storing cells over an area (the communities they belong to) closes the area's open cells
at the new cells' `valid_from` and opens the new ones. An area's first grid is valid from
'-infinity' (so historical records fall into it), a later one from the transaction's time, unless
`valid_from` is given. Features keep their cells; re-assignment is `gridmgr assign --reassign`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gridmgr.errors import InputError, TopologyError
from gridmgr.geo.gisfile import Feature
from gridmgr.grid import regions
from gridmgr.grid import topology as topo

# Shared vertices must coincide exactly: coordinates are snapped to 1e-9° (~0.1 mm) and every
# overlay runs on that precision grid.
SNAP_DEG = 1e-9
# one grid change at a time: versions are computed from the cells open when it starts
_LOCK_KEY = 0x67726964  # "grid"

Progress = Callable[[int, int], None]


@dataclass
class GridSummary:
    """What a generate or import stored: cells, areas, slivers merged, fixes, the versions touched."""

    cells: int
    communities: int
    slivers_merged: int = 0
    closed: int = 0  # cells of the previous version closed by this one
    inherited: int = 0  # new cells that took over responsibility rows from an old cell
    fixed: list[str] = field(default_factory=list)
    valid_from: list[str] = field(default_factory=list)
    whole_district: bool = False
    source: str = "generated"

    def line(self) -> str:
        """The one-line summary of the command."""
        where = "the whole district (no communities)" if self.whole_district else f"{self.communities} communities"
        done = (
            f"{self.slivers_merged} slivers merged"
            if self.source == "generated"
            else f"{len(self.fixed)} problems fixed"
        )
        return (
            f"{self.cells} cells in {where}, {done}, {self.closed} old cells closed, "
            f"{self.inherited} inherited responsibility, valid from {', '.join(self.valid_from)}"
        )


def utm_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the WGS84 UTM zone holding a point (326xx north, 327xx south)."""
    zone = min(max(int(math.floor((lon + 180.0) / 6.0)) + 1, 1), 60)
    return (32600 if lat >= 0 else 32700) + zone


class SquareLattice:
    """Squares of one size in a UTM zone, aligned on multiples of the size from the zone's origin.

    The fixed origin makes the squares of neighbouring communities line up. Corners are computed
    once per lattice point and transformed to WGS84, so neighbouring squares share exact vertices;
    the squares' edges are straight in WGS84 between those corners (off a UTM-straight line by far
    less than a millimetre over a few hundred metres). The size is in UTM grid metres: the ground
    differs by UTM's scale factor (0.04 % in Beijing, under 0.1 % anywhere in a zone).
    """

    def __init__(self, epsg: int, size: float):
        self.size = float(size)
        self._to_utm = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
        self._to_wgs = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True)

    def to_utm(self, geom: BaseGeometry) -> BaseGeometry:
        """A WGS84 geometry in the lattice's UTM zone (metres)."""
        return shapely.transform(geom, lambda xy: np.column_stack(self._to_utm.transform(xy[:, 0], xy[:, 1])))

    def squares(self, area: BaseGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The squares covering an area's bounds: WGS84 polygons, row (northing) and column indexes."""
        s = self.size
        x, y = self._to_utm.transform(*shapely.get_coordinates(area).T)
        ii = np.arange(math.floor(x.min() / s), math.ceil(x.max() / s) + 1)
        jj = np.arange(math.floor(y.min() / s), math.ceil(y.max() / s) + 1)
        lon, lat = self._to_wgs.transform(*np.meshgrid(ii * s, jj * s))
        pts = np.stack([np.round(lon, 9), np.round(lat, 9)], axis=-1)  # (rows+1, cols+1, 2)
        sw, se, ne, nw = pts[:-1, :-1], pts[:-1, 1:], pts[1:, 1:], pts[1:, :-1]
        rings = np.stack([sw, se, ne, nw, sw], axis=-2).reshape(-1, 5, 2)
        cols, rows = np.meshgrid(ii[:-1], jj[:-1])
        # a (n, 5, 2) array of rings gives an array of polygons; the stub's overloads cannot tell
        return cast(np.ndarray, shapely.polygons(rings)), rows.ravel(), cols.ravel()


def _shared_length(a: BaseGeometry, b: BaseGeometry, lattice: SquareLattice) -> float:
    """Length in metres of the edge two cells share."""
    common = shapely.intersection(a.boundary, b.boundary)
    return 0.0 if common.is_empty else lattice.to_utm(common).length


def _cells_of(area: BaseGeometry, lattice: SquareLattice, sliver_ratio: float) -> tuple[list, int]:
    """An area's cells in code order (rows from the north, columns from the west) and slivers merged.

    Each square is clipped to the area; every polygon of the result is a piece. A piece smaller than
    sliver_ratio × its full square joins the neighbouring piece that shares the longest edge with
    it (repeatedly, smallest first); a sliver with no neighbour stays a cell of its own.
    """
    squares, rows, cols = lattice.squares(area)
    shapely.prepare(area)
    hit = shapely.intersects(area, squares)
    squares, rows, cols = squares[hit], rows[hit], cols[hit]
    clipped = squares.copy()
    edge = ~shapely.contains_properly(area, squares)
    clipped[edge] = shapely.intersection(squares[edge], area, grid_size=SNAP_DEG)
    parts, index = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, index = parts[keep], index[keep]
    rows, cols = rows[index], cols[index]
    # a sliver is judged against its own square in degrees²: the ratio is the same as in metres²
    threshold = shapely.area(squares)[index] * sliver_ratio
    geoms = list(parts)
    sizes = shapely.area(parts).astype(float)
    alive = np.ones(len(geoms), dtype=bool)
    neighbours: list[set[int]] = [set() for _ in geoms]
    left, right = shapely.STRtree(parts).query(parts, predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist()):
        if a != b:
            neighbours[a].add(b)
    heap = [(sizes[k], k) for k in range(len(geoms)) if sizes[k] < threshold[k]]
    heapq.heapify(heap)
    merged = 0
    while heap:
        size, k = heapq.heappop(heap)
        if not alive[k] or size != sizes[k] or size >= threshold[k]:
            continue  # merged away, grown since it was queued, or no longer a sliver
        best, best_len = None, 0.0
        for nb in sorted(neighbours[k]):
            length = _shared_length(geoms[k], geoms[nb], lattice)
            if length > best_len:
                best, best_len = nb, length
        if best is None:
            continue
        geoms[best] = shapely.union(geoms[best], geoms[k], grid_size=SNAP_DEG)
        sizes[best] = shapely.area(geoms[best])
        alive[k] = False
        merged += 1
        for nb in neighbours[k] - {best}:
            neighbours[nb].discard(k)
            neighbours[nb].add(best)
            neighbours[best].add(nb)
        neighbours[best].discard(k)
        if sizes[best] < threshold[best]:
            heapq.heappush(heap, (sizes[best], best))
    survivors = np.flatnonzero(alive)
    reps = shapely.get_coordinates(shapely.point_on_surface([geoms[k] for k in survivors]))
    # two cells from one square (the area cuts it in two) keep west→east, then north→south
    order = sorted(
        range(len(survivors)), key=lambda m: (-rows[survivors[m]], cols[survivors[m]], reps[m, 0], -reps[m, 1])
    )
    return [geoms[survivors[m]] for m in order], merged


def generate(
    conn: Connection,
    district_code: str,
    cell_size: float,
    *,
    valid_from: datetime | None = None,
    sliver_ratio: float = 0.3,
    progress: Progress | None = None,
) -> GridSummary:
    """Lay square cells of `cell_size` metres over each community of a district; store them as a new version.

    The squares lie in the UTM zone of the district's centroid, aligned on multiples of the cell
    size, clipped to each community, with slivers merged (see `_cells_of`). A district with no
    community is gridded as a whole (cells coded district + 9 digits). `progress(done, total)` is
    called after each community.
    """
    if not (len(district_code) == 6 and district_code.isdigit()):
        raise InputError(f"{district_code!r} is not a 6-digit district code", field="district-code")
    if not cell_size > 0:
        raise InputError(f"the cell size must be positive, not {cell_size}", field="cell-size")
    if not 0 <= sliver_ratio < 1:
        raise InputError(f"the sliver ratio must be in [0, 1), not {sliver_ratio}", field="sliver-ratio")
    _lock(conn)
    district = conn.execute(
        text("""
        SELECT id, code, ST_AsBinary(geom) AS wkb, ST_X(c) AS lon, ST_Y(c) AS lat
        FROM regions, ST_Centroid(geom) c WHERE level = 'district' AND code = :d
    """),
        {"d": district_code},
    ).first()
    if district is None:
        raise InputError(
            f"district {district_code} is not loaded: import it with `gridmgr regions "
            "import --level district` or pass --boundary"
        )
    areas = conn.execute(
        text("""
        SELECT id, code, ST_AsBinary(geom) AS wkb FROM regions
        WHERE level = 'community' AND left(code, 6) = :d ORDER BY code
    """),
        {"d": district_code},
    ).all()
    whole = not areas
    if whole:
        areas = [district]
    lattice = SquareLattice(utm_epsg(district.lon, district.lat), cell_size)
    ns: list[int] = []
    codes: list[str | None] = []
    area_ids: list[int | None] = []
    wkbs: list[str] = []
    merged = 0
    for done, a in enumerate(areas, start=1):
        cells, m = _cells_of(shapely.from_wkb(bytes(a.wkb)), lattice, sliver_ratio)
        digits = topo.CODE_LENGTH - len(a.code)
        if len(cells) >= 10**digits:
            raise InputError(
                f"community {a.code} would get {len(cells)} cells, more than a {digits}-digit "
                f"sequence numbers ({10**digits - 1}); use a larger --cell-size"
            )
        merged += m
        for seq, hexwkb in enumerate(shapely.to_wkb(cells, hex=True), start=1):
            ns.append(len(ns) + 1)
            codes.append(f"{a.code}{seq:0{digits}d}")
            area_ids.append(a.id)
            wkbs.append(hexwkb)
        if progress:
            progress(done, len(areas))
    topo.create_stage(conn)
    topo.fill_stage(conn, ns, [f"cell {c}" for c in codes], codes, area_ids, wkbs)
    closed, inherited, vfs = _open_version(conn, "generated", valid_from)
    return GridSummary(len(ns), len(areas), merged, closed, inherited, [], vfs, whole)


def import_cells(
    conn: Connection,
    features: list[Feature],
    *,
    code_field: str | None = None,
    valid_from: datetime | None = None,
    tolerance_m2: float = 1.0,
) -> GridSummary:
    """Check drawn cells, fix small overlaps and gaps, and store them as a new version; all or nothing.

    Every violation is reported (TopologyError lists them all, nothing is stored): invalid geometry,
    missing, malformed or duplicate codes, a code not starting with its community's, a cell outside
    every community or with more than `tolerance_m2` outside its main community (the one it overlaps
    most), overlaps and gaps larger than `tolerance_m2`. Smaller overlaps are removed from the cell
    with the higher code, smaller gaps merged into the adjacent cell sharing the longest edge, and
    smaller parts outside the community clipped off; each fix is listed in the summary. Without
    `code_field` cells are numbered west→east, north→south (`grid_topology.number_cells`).
    """
    if not features:
        raise InputError("the file has no cells")
    if tolerance_m2 < 0:
        raise InputError(f"the tolerance must not be negative, not {tolerance_m2}", field="tolerance")
    _lock(conn)
    probs = topo.Problems()
    ns: list[int] = []
    records: list[str] = []
    codes: list[str | None] = []
    wkbs: list[str] = []
    for n, f in enumerate(features, start=1):
        code = _code_of(f.props.get(code_field)) if code_field else None
        if f.geom.geom_type not in ("Polygon", "MultiPolygon"):
            p = f.geom.representative_point() if not f.geom.is_empty else None
            probs.refused.append(
                f"{topo.label(f.record, code)}: is a {f.geom.geom_type}, a polygon is "
                f"needed{topo.at(p.x, p.y) if p else ''}"
            )
            continue
        ns.append(n)
        records.append(f.record)
        codes.append(code)
        wkbs.append(shapely.to_wkb(f.geom, hex=True))
    topo.create_stage(conn)
    topo.fill_stage(conn, ns, records, codes, [None] * len(ns), wkbs)
    topo.check_validity(conn, probs)
    topo.assign_areas(conn, probs)
    topo.check_crossing(conn, probs, tolerance_m2, fix=True)
    if code_field is None:
        topo.number_cells(conn, probs)
    topo.check_codes(conn, probs, code_field)
    topo.check_overlaps(conn, probs, tolerance_m2, fix=True)
    topo.check_gaps(conn, probs, tolerance_m2, fix=True)
    topo.check_empty(conn, probs)
    if probs.refused:
        raise TopologyError(
            f"grid import refused, nothing stored: {len(probs.refused)} problem(s)", problems=probs.refused
        )
    communities = conn.execute(text("SELECT count(DISTINCT area_id) FROM grid_stage")).scalar_one()
    closed, inherited, vfs = _open_version(conn, "imported", valid_from)
    return GridSummary(len(ns), communities, 0, closed, inherited, probs.fixed, vfs, source="imported")


def check(
    conn: Connection, district_code: str | None = None, *, tolerance_m2: float = 1.0, at: datetime | None = None
) -> list[str]:
    """The topology problems of the cells valid now (or at `at`), one line each; empty when sound.

    Overlaps above the overlap trigger's noise (0.01 m²) are problems; gaps and parts outside a
    cell's community count above `tolerance_m2` (a generated grid's snapping leaves far less).
    """
    topo.create_stage(conn)
    conn.execute(
        text("""
        INSERT INTO grid_stage (n, record, code, area_id, geom)
        SELECT g.id, 'id ' || g.id, g.code, g.community_id, g.geom
        FROM grid_cells g JOIN regions r ON r.id = g.community_id
        WHERE g.valid_from <= COALESCE(CAST(:at AS timestamptz), now())
          AND (g.valid_to IS NULL OR COALESCE(CAST(:at AS timestamptz), now()) < g.valid_to)
          AND (CAST(:d AS text) IS NULL OR left(r.code, 6) = :d)
    """),
        {"at": at, "d": district_code},
    )
    conn.execute(text("CREATE INDEX ON grid_stage USING gist (geom)"))
    conn.execute(text("ANALYZE grid_stage"))
    probs = topo.Problems()
    topo.check_validity(conn, probs)
    topo.check_crossing(conn, probs, tolerance_m2, fix=False)
    topo.check_codes(conn, probs, None)
    topo.check_overlaps(conn, probs, topo.NOISE_M2, fix=False)
    topo.check_gaps(conn, probs, tolerance_m2, fix=False)
    return probs.refused


def counts(conn: Connection, district_code: str | None = None, at: datetime | None = None) -> tuple[int, int]:
    """(cells, communities) valid now (or at `at`), in one district or everywhere."""
    row = conn.execute(
        text("""
        SELECT count(*), count(DISTINCT g.community_id)
        FROM grid_cells g JOIN regions r ON r.id = g.community_id
        WHERE g.valid_from <= COALESCE(CAST(:at AS timestamptz), now())
          AND (g.valid_to IS NULL OR COALESCE(CAST(:at AS timestamptz), now()) < g.valid_to)
          AND (CAST(:d AS text) IS NULL OR left(r.code, 6) = :d)
    """),
        {"at": at, "d": district_code},
    ).one()  # an aggregate without GROUP BY: always one row
    return int(row[0]), int(row[1])


def store_boundary(conn: Connection, features: list[Feature], district_code: str) -> None:
    """Insert or update a district's boundary from a file (its code and name fields are optional).

    The feature whose `code` is the district code is used, else the file's only feature; the name
    comes from the feature, else the region already stored, else the code.
    """
    chosen = [f for f in features if _code_of(f.props.get("code")) == district_code]
    if not chosen and len(features) == 1 and _code_of(features[0].props.get("code")) is None:
        chosen = features
    if len(chosen) != 1:
        raise InputError(
            f"the boundary file needs one feature with code {district_code} (or a single "
            f"feature without code); it has {len(features)}, {len(chosen)} matching"
        )
    f = chosen[0]
    name = (
        f.props.get("name")
        or conn.execute(text("SELECT name FROM regions WHERE code = :c"), {"c": district_code}).scalar()
        or district_code
    )
    rows = regions.prepare([Feature(f.record, {"code": district_code, "name": name}, f.geom)], "district")
    regions.store(conn, rows, "district")


def _code_of(raw: Any) -> str | None:
    """A code read from a file as text: numbers lose a '.0', blanks are None."""
    if raw is None or str(raw).strip() == "":
        return None
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _lock(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _open_version(conn: Connection, source: str, valid_from: datetime | None) -> tuple[int, int, list[str]]:
    """Close the open cells of the staged cells' areas, store the staged cells, hand on responsibility.

    Returns (cells closed, new cells that inherited responsibility, valid_from values used).
    """
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.grid_scope"))
    # the staged cells' areas and their districts: a district-wide grid is superseded too
    conn.execute(
        text("""
        CREATE TEMP TABLE grid_scope ON COMMIT DROP AS
        WITH areas AS (SELECT DISTINCT r.id, r.code FROM grid_stage s JOIN regions r ON r.id = s.area_id),
        scope AS (SELECT id, left(code, 6) AS district FROM areas
                  UNION SELECT d.id, d.code FROM areas a JOIN regions d
                    ON d.level = 'district' AND d.code = left(a.code, 6))
        SELECT s.id AS region_id, COALESCE(CAST(:vf AS timestamptz), CASE
                   WHEN EXISTS (SELECT 1 FROM grid_cells g WHERE g.community_id = s.id)
                     OR EXISTS (SELECT 1 FROM grid_cells g JOIN regions d ON d.id = g.community_id
                                WHERE d.level = 'district' AND d.code = s.district)
                   THEN now() ELSE '-infinity'::timestamptz END) AS vf
        FROM scope s
    """),
        {"vf": valid_from},
    )
    late = conn.execute(
        text("""
        SELECT g.code, g.valid_from::text, g.valid_to::text, s.vf::text FROM grid_cells g
        JOIN grid_scope s ON s.region_id = g.community_id
        WHERE (g.valid_to IS NULL AND g.valid_from >= s.vf) OR g.valid_to > s.vf
        ORDER BY g.valid_from DESC, g.code LIMIT 5
    """)
    ).all()
    if late:
        raise InputError(
            f"the new grid would start at {late[0].vf} but cells of the area are valid later "
            f"({', '.join(f'{r.code} from {r.valid_from}' for r in late)}): pass a later "
            "--valid-from"
        )
    # close before inserting: the overlap trigger compares validity periods
    old_ids = list(
        conn.execute(
            text("""
        UPDATE grid_cells g SET valid_to = s.vf FROM grid_scope s
        WHERE g.community_id = s.region_id AND g.valid_to IS NULL RETURNING g.id
    """)
        ).scalars()
    )
    try:
        new_ids = list(
            conn.execute(
                text("""
            INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source)
            SELECT s.code, s.area_id, s.geom, ST_Area(s.geom::geography), sc.vf, :source
            FROM grid_stage s JOIN grid_scope sc ON sc.region_id = s.area_id ORDER BY s.code
            RETURNING id
        """),
                {"source": source},
            ).scalars()
        )
    except IntegrityError as exc:
        # e.g. another area's open cells reach into this one: the trigger names both cells
        raise TopologyError(
            "the database refused the new cells (cells valid at the same time must not "
            "overlap or share a code); nothing stored",
            problems=[str(exc.orig).strip().splitlines()[0]],
        ) from exc
    # (psycopg2 reads '-infinity' as datetime.min: label it in SQL)
    vfs = [
        r.vf.isoformat() if r.finite else "-infinity"
        for r in conn.execute(
            text("""
        SELECT DISTINCT vf, isfinite(vf) AS finite FROM grid_scope
        WHERE region_id IN (SELECT area_id FROM grid_stage) ORDER BY vf
    """)
        )
    ]
    return len(old_ids), _inherit(conn, new_ids, old_ids), vfs


def _inherit(conn: Connection, new_ids: list[int], old_ids: list[int]) -> int:
    """Give each new cell the responsibility rows of the old cell it overlaps most (ties: lowest code).

    Rows are units (cell_units), people (cell_people) and duty grids (duty_grid_cells). Returns how
    many new cells received any.
    """
    if not new_ids or not old_ids:
        return 0
    params = {"new": new_ids, "old": old_ids}
    has_rows = conn.execute(
        text("""
        SELECT EXISTS (SELECT 1 FROM cell_units WHERE cell_id = ANY(CAST(:old AS bigint[])))
            OR EXISTS (SELECT 1 FROM cell_people WHERE cell_id = ANY(CAST(:old AS bigint[])))
            OR EXISTS (SELECT 1 FROM duty_grid_cells WHERE cell_id = ANY(CAST(:old AS bigint[])))
    """),
        params,
    ).scalar()
    if not has_rows:
        return 0
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.grid_heirs"))
    conn.execute(
        text("""
        CREATE TEMP TABLE grid_heirs ON COMMIT DROP AS
        SELECT DISTINCT ON (x.new_id) x.new_id, x.old_id FROM (
            SELECT n.id AS new_id, o.id AS old_id, o.code,
                   ST_Area(ST_Intersection(o.geom, n.geom)::geography) AS m2
            FROM unnest(CAST(:new AS bigint[])) AS u(id) JOIN grid_cells n ON n.id = u.id
            JOIN grid_cells o ON o.geom && n.geom AND o.id = ANY(CAST(:old AS bigint[]))) x
        WHERE x.m2 > 0
        ORDER BY x.new_id, x.m2 DESC, x.code
    """),
        params,
    )
    conn.execute(
        text("""
        INSERT INTO cell_units (cell_id, duty, unit_id)
        SELECT h.new_id, u.duty, u.unit_id FROM grid_heirs h JOIN cell_units u ON u.cell_id = h.old_id
    """)
    )
    conn.execute(
        text("""
        INSERT INTO cell_people (cell_id, person_id, post)
        SELECT h.new_id, p.person_id, p.post FROM grid_heirs h JOIN cell_people p ON p.cell_id = h.old_id
    """)
    )
    conn.execute(
        text("""
        INSERT INTO duty_grid_cells (duty_grid_id, cell_id)
        SELECT d.duty_grid_id, h.new_id FROM grid_heirs h JOIN duty_grid_cells d ON d.cell_id = h.old_id
    """)
    )
    return conn.execute(
        text("""
        SELECT count(*) FROM grid_heirs h WHERE EXISTS (SELECT 1 FROM cell_units WHERE cell_id = h.old_id)
            OR EXISTS (SELECT 1 FROM cell_people WHERE cell_id = h.old_id)
            OR EXISTS (SELECT 1 FROM duty_grid_cells WHERE cell_id = h.old_id)
    """)
    ).scalar_one()  # count(*): always one row
