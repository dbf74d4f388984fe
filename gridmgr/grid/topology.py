"""Topology checks of a set of cells in a staging table: validity, community, codes, overlaps, gaps.

`grid import` stages the file's cells and `grid check` stages the stored cells valid now; both run
the same SQL checks on the staging table `grid_stage`, where the communities are. Every problem is
collected (never just the first) as one line naming the cell (its code, else its feature number)
and a point of the problem area as `(lon, lat)` with 6 decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median

from sqlalchemy import text
from sqlalchemy.engine import Connection

# The overlap trigger of migration 0001 lets cells overlap by this much (floating-point noise):
# smaller overlaps and gaps are neither reported nor fixed.
NOISE_M2 = 0.01
CODE_LENGTH = 15
M_PER_DEG_LAT = 111_000  # near enough for the row bands of number_cells
# Within 1e-8° (~1 mm) of a cell counts as touching it when measuring a gap's shared edge: the gap's
# outline comes out of an overlay, so it may differ from the cell's edges by rounding.
TOUCH_DEG = 1e-8
# Interiors are compared through overlays (ST_Intersection, robust since GEOS 3.9), never ST_Relate:
# GEOS before 3.13 can fail relating polygons whose edges nearly coincide ("side location conflict"),
# which is exactly what a gap or a sliver next to its cells looks like.

# The areas cells are coded under: every community, and every district that has no community yet
# (its cells are coded 6-digit district + 9-digit sequence until communities are loaded).
AREAS = """(SELECT r.id, r.code, r.geom FROM regions r
  WHERE r.level = 'community' OR (r.level = 'district' AND NOT EXISTS (
    SELECT 1 FROM regions c WHERE c.level = 'community' AND left(c.code, 6) = r.code)))"""


@dataclass
class Problems:
    """What the checks found: violations that refuse the cells, and small ones fixed in place."""

    refused: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)


def at(x: float | None, y: float | None) -> str:
    """A location for a message: ` at (lon, lat)` with 6 decimals."""
    return "" if x is None or y is None else f" at ({x:.6f}, {y:.6f})"


def label(record: str, code: str | None) -> str:
    """How a message names a cell: its code and record when it has a code, else its record."""
    return f"cell {code} ({record})" if code else record


def create_stage(conn: Connection) -> None:
    """(Re)create the temporary staging table of the caller's transaction, and `pg_temp.gm_m2`."""
    # Areas in the checks are planar lon/lat areas scaled to m² at the geometry's latitude (WGS84
    # metres per degree of latitude and of longitude): the topology is planar in EPSG:4326, and the
    # geodesic area of a long thin sliver would count the bulge of its long edges' great circles
    # (8 mm over a 700 m east-west edge at 40°N: metres² of area no planar check can see).
    conn.execute(
        text("""
        CREATE OR REPLACE FUNCTION pg_temp.gm_m2(g geometry) RETURNS double precision
        LANGUAGE sql IMMUTABLE AS $$
          SELECT COALESCE(ST_Area(g)
            * (111132.954 - 559.822 * cos(2 * radians(y)) + 1.175 * cos(4 * radians(y)))
            * (111412.84 * cos(radians(y)) - 93.5 * cos(3 * radians(y)) + 0.118 * cos(5 * radians(y))), 0)
          FROM (SELECT ST_Y(ST_Centroid(g)) AS y) c
        $$
    """)
    )
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.grid_stage"))
    # n: feature number (import), cell id (check) or sequence (generate); record names it in messages
    conn.execute(
        text("""
        CREATE TEMP TABLE grid_stage (
            n bigint PRIMARY KEY, record text NOT NULL, code text, area_id bigint,
            geom geometry NOT NULL, area_m2 double precision, invalid boolean NOT NULL DEFAULT false
        ) ON COMMIT DROP
    """)
    )


def fill_stage(
    conn: Connection,
    ns: list[int],
    records: list[str],
    codes: list[str | None],
    area_ids: list[int | None],
    wkb_hex: list[str],
) -> None:
    """Load cells into the staging table in one statement, then index and analyse it."""
    conn.execute(
        text("""
        INSERT INTO grid_stage (n, record, code, area_id, geom)
        SELECT u.n, u.record, u.code, u.area_id, ST_Multi(ST_Force2D(ST_GeomFromWKB(decode(u.wkb, 'hex'), 4326)))
        FROM unnest(CAST(:ns AS bigint[]), CAST(:records AS text[]), CAST(:codes AS text[]),
                    CAST(:area_ids AS bigint[]), CAST(:wkbs AS text[])) AS u(n, record, code, area_id, wkb)
    """),
        {"ns": ns, "records": records, "codes": codes, "area_ids": area_ids, "wkbs": wkb_hex},
    )
    # the index after the bulk load, and statistics: temp tables are never auto-analysed
    conn.execute(text("CREATE INDEX ON grid_stage USING gist (geom)"))
    conn.execute(text("ANALYZE grid_stage"))


def check_validity(conn: Connection, probs: Problems) -> None:
    """Report invalid polygons with PostGIS's reason and place; go on with their repaired shape."""
    rows = conn.execute(
        text("""
        SELECT s.n, s.record, s.code, d.reason, ST_X(d.location) AS x, ST_Y(d.location) AS y
        FROM grid_stage s, ST_IsValidDetail(s.geom) d WHERE NOT d.valid ORDER BY s.n
    """)
    ).all()
    for r in rows:
        probs.refused.append(f"{label(r.record, r.code)}: invalid geometry: {r.reason}{at(r.x, r.y)}")
    # the later checks need valid input; the cell stays refused, but gaps and overlaps are still found
    conn.execute(
        text("""
        UPDATE grid_stage SET invalid = true,
            geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))
        WHERE NOT ST_IsValid(geom)
    """)
    )
    conn.execute(text("UPDATE grid_stage SET area_m2 = pg_temp.gm_m2(geom)"))


def assign_areas(conn: Connection, probs: Problems) -> None:
    """Give each staged cell the community it overlaps most; report cells outside every community."""
    # Communities are cut into small pieces (ST_Subdivide) so that measuring a cell's overlap is an
    # overlay with a few dozen vertices, not with a whole community outline; and only cells touching
    # several communities are measured at all.
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.grid_area_parts"))
    conn.execute(
        text(f"""
        CREATE TEMP TABLE grid_area_parts ON COMMIT DROP AS
        SELECT a.id, a.code, ST_Subdivide(a.geom, 64) AS geom FROM {AREAS} a
        WHERE a.geom && (SELECT ST_Extent(geom) FROM grid_stage)
    """)
    )
    conn.execute(text("CREATE INDEX ON grid_area_parts USING gist (geom)"))
    conn.execute(text("ANALYZE grid_area_parts"))
    conn.execute(
        text("""
        WITH touch AS MATERIALIZED (
            SELECT s.n, p.id, p.code, ST_Intersection(s.geom, p.geom) AS g
            FROM grid_area_parts p JOIN grid_stage s ON p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
            WHERE s.n IN (SELECT s2.n FROM grid_area_parts p2 JOIN grid_stage s2
                            ON p2.geom && s2.geom AND ST_Intersects(p2.geom, s2.geom)
                          GROUP BY s2.n HAVING count(DISTINCT p2.id) > 1)),
        measured AS (
            SELECT n, id, code, sum(pg_temp.gm_m2(g)) AS m2 FROM touch GROUP BY n, id, code
            UNION ALL
            SELECT DISTINCT s.n, p.id, p.code, 1.0 FROM grid_area_parts p
            JOIN grid_stage s ON p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
            WHERE s.n NOT IN (SELECT n FROM touch))
        UPDATE grid_stage s SET area_id = b.id
        FROM (SELECT DISTINCT ON (n) n, id FROM measured WHERE m2 > 0 ORDER BY n, m2 DESC, code) b
        WHERE s.n = b.n
    """)
    )
    rows = conn.execute(
        text("""
        SELECT s.record, s.code, ST_X(p) AS x, ST_Y(p) AS y
        FROM grid_stage s, ST_PointOnSurface(s.geom) p WHERE s.area_id IS NULL ORDER BY s.n
    """)
    ).all()
    for r in rows:
        probs.refused.append(f"{label(r.record, r.code)}: lies outside every community{at(r.x, r.y)}")


def check_crossing(conn: Connection, probs: Problems, tolerance_m2: float, fix: bool) -> None:
    """Report cells with more than tolerance m² outside their community; clip smaller parts when fixing."""
    # One overlay per community (its cells' union minus the community), then only the cells that
    # reach into what sticks out: far cheaper than an overlay of every cell with its community.
    rows = conn.execute(
        text(f"""
        WITH outside AS MATERIALIZED (
            SELECT u.area_id, (ST_Dump(ST_Difference(u.g, r.geom))).geom AS g
            FROM (SELECT area_id, ST_Union(geom) AS g FROM grid_stage
                  WHERE area_id IS NOT NULL GROUP BY area_id) u
            JOIN regions r ON r.id = u.area_id),
        hits AS (
            SELECT s.n, ST_Union(x.g) AS g
            FROM outside o JOIN grid_stage s ON s.area_id = o.area_id AND s.geom && o.g
            CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(s.geom, o.g), 3) AS g) x
            WHERE ST_Dimension(o.g) = 2 AND pg_temp.gm_m2(o.g) > :noise AND NOT ST_IsEmpty(x.g)
            GROUP BY s.n)
        SELECT h.n, s.record, s.code, r.code AS area_code, pg_temp.gm_m2(h.g) AS m2,
               ST_X(ST_PointOnSurface(h.g)) AS x, ST_Y(ST_PointOnSurface(h.g)) AS y,
               (SELECT string_agg(a.code, ', ' ORDER BY a.code) FROM {AREAS} a
                WHERE a.geom && h.g AND pg_temp.gm_m2(ST_Intersection(a.geom, h.g)) > :noise) AS into
        FROM hits h JOIN grid_stage s ON s.n = h.n JOIN regions r ON r.id = s.area_id
        ORDER BY h.n
    """),
        {"noise": NOISE_M2},
    ).all()
    clip = []
    for r in rows:
        if r.m2 <= NOISE_M2:
            continue
        where = f"community {r.into}" if r.into else "no community"
        if r.m2 > tolerance_m2:
            probs.refused.append(
                f"{label(r.record, r.code)}: {r.m2:.2f} m² lie outside its community "
                f"{r.area_code} (in {where}){at(r.x, r.y)}"
            )
        elif fix:
            clip.append(r.n)
            probs.fixed.append(
                f"{label(r.record, r.code)}: {r.m2:.2f} m² outside its community "
                f"{r.area_code} clipped off{at(r.x, r.y)}"
            )
    if clip:
        conn.execute(
            text("""
            UPDATE grid_stage s SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(
                ST_Intersection(s.geom, r.geom)), 3))
            FROM regions r WHERE r.id = s.area_id AND s.n = ANY(:ns)
        """),
            {"ns": clip},
        )


def number_cells(conn: Connection, probs: Problems) -> None:
    """Code cells west→east, north→south by representative point, in rows of the median cell's size.

    Irregular cells have no exact rows: a cell's row is its representative point's distance from the
    community's northernmost one, in steps of the square root of the community's median cell area;
    within a row, cells go west to east. Each community's cells are numbered 001, 002, ...
    """
    rows = conn.execute(
        text("""
        SELECT s.n, s.area_id, r.code AS area_code, s.area_m2, ST_X(p) AS x, ST_Y(p) AS y
        FROM grid_stage s JOIN regions r ON r.id = s.area_id, ST_PointOnSurface(s.geom) p
        ORDER BY s.area_id, s.n
    """)
    ).all()
    by_area: dict[int, list] = {}
    for r in rows:
        by_area.setdefault(r.area_id, []).append(r)
    ns, codes = [], []
    for cells in by_area.values():
        area_code = cells[0].area_code
        digits = CODE_LENGTH - len(area_code)
        if len(cells) >= 10**digits:
            probs.refused.append(
                f"community {area_code}: {len(cells)} cells, more than a {digits}-digit "
                f"sequence numbers (at most {10**digits - 1})"
            )
            continue
        band = max(math.sqrt(median(c.area_m2 for c in cells)), 1e-6)
        top = max(c.y for c in cells)
        order = sorted(cells, key=lambda c: (math.floor((top - c.y) * M_PER_DEG_LAT / band), c.x, -c.y, c.n))
        for seq, c in enumerate(order, start=1):
            ns.append(c.n)
            codes.append(f"{area_code}{seq:0{digits}d}")
    if ns:
        conn.execute(
            text("""
            UPDATE grid_stage s SET code = u.code
            FROM unnest(CAST(:ns AS bigint[]), CAST(:codes AS text[])) AS u(n, code) WHERE s.n = u.n
        """),
            {"ns": ns, "codes": codes},
        )


def check_codes(conn: Connection, probs: Problems, code_field: str | None) -> None:
    """Report codes that are missing, not 15 digits, not starting with their community's code, or repeated."""
    if code_field:
        rows = conn.execute(
            text("""
            SELECT s.record, ST_X(p) AS x, ST_Y(p) AS y
            FROM grid_stage s, ST_PointOnSurface(s.geom) p WHERE s.code IS NULL ORDER BY s.n
        """)
        ).all()
        for r in rows:
            probs.refused.append(f"{r.record}: no code in field '{code_field}'{at(r.x, r.y)}")
    rows = conn.execute(
        text(f"""
        SELECT s.record, s.code, r.code AS area_code, ST_X(p) AS x, ST_Y(p) AS y,
               s.code ~ '^[0-9]{{{CODE_LENGTH}}}$' AS well_formed
        FROM grid_stage s LEFT JOIN regions r ON r.id = s.area_id, ST_PointOnSurface(s.geom) p
        WHERE s.code IS NOT NULL AND (s.code !~ '^[0-9]{{{CODE_LENGTH}}}$'
              OR (r.code IS NOT NULL AND left(s.code, length(r.code)) <> r.code))
        ORDER BY s.n
    """)
    ).all()
    for r in rows:
        if not r.well_formed:
            probs.refused.append(f"{r.record}: code {r.code!r} is not {CODE_LENGTH} digits{at(r.x, r.y)}")
        else:
            probs.refused.append(
                f"{label(r.record, r.code)}: code does not start with its community's code {r.area_code}{at(r.x, r.y)}"
            )
    rows = conn.execute(
        text("""
        SELECT s.code, string_agg(s.record, ', ' ORDER BY s.n) AS records,
               ST_X(ST_PointOnSurface((array_agg(s.geom ORDER BY s.n))[2])) AS x,
               ST_Y(ST_PointOnSurface((array_agg(s.geom ORDER BY s.n))[2])) AS y
        FROM grid_stage s WHERE s.code IS NOT NULL GROUP BY s.code HAVING count(*) > 1 ORDER BY s.code
    """)
    ).all()
    for r in rows:
        probs.refused.append(f"cell {r.code}: duplicate code ({r.records}){at(r.x, r.y)}")


def check_overlaps(conn: Connection, probs: Problems, tolerance_m2: float, fix: bool) -> None:
    """Report overlapping cells; when fixing, remove overlaps up to tolerance from the higher code."""
    rows = conn.execute(
        text("""
        WITH parts AS MATERIALIZED (
            SELECT a.n AS an, b.n AS bn, ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g
            FROM grid_stage a JOIN grid_stage b ON a.n < b.n AND a.geom && b.geom)
        SELECT p.an, p.bn, a.record AS ar, a.code AS ac, b.record AS br, b.code AS bc,
               pg_temp.gm_m2(p.g) AS m2, ST_X(ST_PointOnSurface(p.g)) AS x,
               ST_Y(ST_PointOnSurface(p.g)) AS y
        FROM parts p JOIN grid_stage a ON a.n = p.an JOIN grid_stage b ON b.n = p.bn
        WHERE NOT ST_IsEmpty(p.g) ORDER BY p.an, p.bn
    """)
    ).all()
    cuts = []  # (cell losing the overlap, cell keeping it)
    noise = 0
    for r in rows:
        a, b = label(r.ar, r.ac), label(r.br, r.bc)
        if r.m2 > tolerance_m2 and r.m2 > NOISE_M2:
            probs.refused.append(f"{a} and {b} overlap by {r.m2:.2f} m²{at(r.x, r.y)}")
            continue
        if not fix:
            continue
        # the higher code gives the overlap up (feature order when codes are missing or equal)
        lose_b = (r.bc or "", r.bn) > (r.ac or "", r.an)
        loser, keeper = (r.bn, r.an) if lose_b else (r.an, r.bn)
        cuts.append((loser, keeper))
        if r.m2 > NOISE_M2:
            probs.fixed.append(
                f"{a} and {b} overlapped by {r.m2:.2f} m²; removed from {b if lose_b else a}{at(r.x, r.y)}"
            )
        else:
            # Noise is removed too, silently: the overlap trigger measures slivers geodesically, and
            # a 0.3 µm sliver along a 1.7 km east-west edge counts there as 40 m².
            noise += 1
    if noise:
        probs.fixed.append(f"{noise} overlap(s) below {NOISE_M2} m² (rounding noise) removed")
    if cuts:
        conn.execute(
            text("""
            UPDATE grid_stage s SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(
                ST_Difference(s.geom, c.g)), 3))
            FROM (SELECT u.loser, ST_Union(k.geom) AS g
                  FROM unnest(CAST(:losers AS bigint[]), CAST(:keepers AS bigint[])) AS u(loser, keeper)
                  JOIN grid_stage k ON k.n = u.keeper GROUP BY u.loser) c
            WHERE s.n = c.loser
        """),
            {"losers": [c[0] for c in cuts], "keepers": [c[1] for c in cuts]},
        )


def check_gaps(conn: Connection, probs: Problems, tolerance_m2: float, fix: bool) -> None:
    """Report parts of each community no cell covers; when fixing, merge small gaps into a neighbour.

    A gap of at most tolerance m² joins the adjacent cell of its community that shares the longest
    edge with it; larger gaps, and gaps no cell of the community touches, are refused.
    """
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.grid_gaps"))
    conn.execute(
        text("""
        CREATE TEMP TABLE grid_gaps ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY h.area_code, ST_YMax(h.g) DESC, ST_XMin(h.g)) AS k,
               h.area_id, h.area_code, h.g AS geom, pg_temp.gm_m2(h.g) AS m2
        FROM (SELECT u.area_id, r.code AS area_code, (ST_Dump(ST_Difference(r.geom, u.g))).geom AS g
              FROM (SELECT area_id, ST_Union(geom) AS g FROM grid_stage
                    WHERE area_id IS NOT NULL GROUP BY area_id) u
              JOIN regions r ON r.id = u.area_id) h
        WHERE ST_Dimension(h.g) = 2 AND pg_temp.gm_m2(h.g) > :noise
    """),
        {"noise": NOISE_M2},
    )
    neighbours = {
        r.k: r
        for r in conn.execute(
            text("""
            SELECT DISTINCT ON (g.k) g.k, s.n, s.record, s.code, l.m AS shared
            FROM grid_gaps g JOIN grid_stage s
              ON s.area_id = g.area_id AND s.geom && ST_Expand(g.geom, :touch)
            CROSS JOIN LATERAL (SELECT ST_Length(ST_Intersection(ST_Boundary(g.geom),
                ST_Buffer(s.geom, :touch))::geography) AS m) l
            WHERE l.m > 0
            ORDER BY g.k, l.m DESC, s.code, s.n
        """),
            {"touch": TOUCH_DEG},
        )
    }
    gaps = conn.execute(
        text("""
        SELECT k, area_code, m2, ST_X(ST_PointOnSurface(geom)) AS x, ST_Y(ST_PointOnSurface(geom)) AS y
        FROM grid_gaps ORDER BY k
    """)
    ).all()
    merge_k, merge_n = [], []
    for g in gaps:
        where = f"community {g.area_code}"
        nb = neighbours.get(g.k)
        if nb is None or g.m2 > tolerance_m2:
            beside = f" next to {label(nb.record, nb.code)}" if nb else ""
            probs.refused.append(f"{where}: gap of {g.m2:.2f} m² not covered by any cell{beside}{at(g.x, g.y)}")
        elif fix:
            merge_k.append(g.k)
            merge_n.append(nb.n)
            probs.fixed.append(f"{where}: gap of {g.m2:.2f} m² merged into {label(nb.record, nb.code)}{at(g.x, g.y)}")
    if merge_k:
        conn.execute(
            text("""
            UPDATE grid_stage s SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(
                ST_Union(s.geom, m.g)), 3))
            FROM (SELECT u.n, ST_Union(g.geom) AS g
                  FROM unnest(CAST(:ks AS bigint[]), CAST(:ns AS bigint[])) AS u(k, n)
                  JOIN grid_gaps g ON g.k = u.k GROUP BY u.n) m
            WHERE s.n = m.n
        """),
            {"ks": merge_k, "ns": merge_n},
        )


def check_empty(conn: Connection, probs: Problems) -> None:
    """Report cells that fixing left with no area (a cell lying within another's small overlap)."""
    rows = conn.execute(
        text("""
        SELECT record, code FROM grid_stage WHERE ST_IsEmpty(geom) OR pg_temp.gm_m2(geom) <= :noise
        ORDER BY n
    """),
        {"noise": NOISE_M2},
    ).all()
    for r in rows:
        probs.refused.append(f"{label(r.record, r.code)}: no area left after removing its overlaps")
