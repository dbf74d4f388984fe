"""The unit grid: generated squares tile each community, imports report every problem, versions, checks."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely import affinity, ops
from shapely.geometry import LineString, Point, Polygon
from sqlalchemy import text

from gridmgr.errors import InputError, TopologyError
from gridmgr.geo.gisfile import Feature, read_features
from gridmgr.grid import cells as grid
from gridmgr.grid import regions
from gridmgr.paths import ROOT

DISTRICT = "110105"
# An irregular synthetic district near Beijing (~2.3 km²), two streets split by a crooked line, each
# split again into two communities: four irregular communities that tile it exactly.
OUTLINE = Polygon(
    [
        (116.4000, 39.9000),
        (116.4185, 39.8993),
        (116.4212, 39.9071),
        (116.4176, 39.9142),
        (116.4043, 39.9138),
        (116.3989, 39.9065),
    ]
)
STREET_LINE = LineString([(116.4102, 39.895), (116.4096, 39.9050), (116.4111, 39.9100), (116.4104, 39.920)])
WEST_LINE = LineString([(116.39, 39.9068), (116.4040, 39.9075), (116.412, 39.9062)])
EAST_LINE = LineString([(116.40, 39.9045), (116.4155, 39.9052), (116.425, 39.9040)])
UTM = pyproj.Transformer.from_crs(4326, grid.utm_epsg(116.41, 39.9), always_xy=True)
V2025 = datetime(2025, 1, 1, tzinfo=timezone.utc)
# Tiling is measured in the plane of EPSG:4326, where the cells' topology lives (a geodesic area would
# count the great-circle bulge of the communities' long straight edges); 9.6e9 in the SQL below is an
# upper bound of m² per degree² around Beijing, for the 0.01 m² overlap threshold.


def _halves(poly, line):
    """The two parts of a polygon cut by a line: (west or north part, east or south part)."""
    a, b = ops.split(poly, line).geoms
    if line is STREET_LINE:
        return (a, b) if a.centroid.x < b.centroid.x else (b, a)
    return (a, b) if a.centroid.y > b.centroid.y else (b, a)


def synthetic_regions() -> dict[str, Polygon]:
    """Code → polygon of the district, its 2 streets and 4 communities."""
    west, east = _halves(OUTLINE, STREET_LINE)
    out = {DISTRICT: OUTLINE, f"{DISTRICT}001": west, f"{DISTRICT}002": east}
    for street, poly, line in (("001", west, WEST_LINE), ("002", east, EAST_LINE)):
        north, south = _halves(poly, line)
        out[f"{DISTRICT}{street}001"] = north
        out[f"{DISTRICT}{street}002"] = south
    return out


def store_regions(conn, polys: dict[str, Polygon]) -> None:
    """Store regions through gridmgr.grid.regions, level by code length."""
    for level, length in (("district", 6), ("street", 9), ("community", 12)):
        feats = [
            Feature(f"{level} {c}", {"code": c, "name": f"test {c}"}, p) for c, p in polys.items() if len(c) == length
        ]
        if feats:
            regions.store(conn, regions.prepare(feats, level), level)


COMMUNITIES = sorted(c for c in synthetic_regions() if len(c) == 12)


@pytest.fixture
def district(conn):
    """The synthetic district stored in the test's transaction; code → polygon."""
    polys = synthetic_regions()
    store_regions(conn, polys)
    return polys


def open_cells(conn, community: str | None = None):
    return conn.execute(
        text("""
        SELECT g.id, g.code, r.code AS community, ST_AsBinary(g.geom) AS wkb, g.area_m2, g.valid_from, g.valid_to
        FROM grid_cells g JOIN regions r ON r.id = g.community_id
        WHERE g.valid_to IS NULL AND (CAST(:c AS text) IS NULL OR r.code = :c) ORDER BY g.code
    """),
        {"c": community},
    ).all()


def assert_tiles(conn, community: str) -> None:
    """The open cells of a community cover it exactly, never overlap, and carry well-formed codes."""
    row = conn.execute(
        text("""
        SELECT ST_Area(ST_SymDifference(ST_Union(g.geom), r.geom)) / ST_Area(r.geom) AS rel,
               count(*) AS n, array_agg(g.code ORDER BY g.code) AS codes
        FROM grid_cells g JOIN regions r ON r.id = g.community_id
        WHERE r.code = :c AND g.valid_to IS NULL GROUP BY r.geom, r.area_m2
    """),
        {"c": community},
    ).first()
    assert row.rel < 1e-6, (community, row.rel)
    overlapping = conn.execute(
        text("""
        SELECT count(*) FROM grid_cells a JOIN grid_cells b ON a.id < b.id AND a.geom && b.geom
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL
          AND ST_Area(ST_Intersection(a.geom, b.geom)) * 9.6e9 > 0.01
          AND a.community_id = (SELECT id FROM regions WHERE code = :c)
    """),
        {"c": community},
    ).scalar()
    assert overlapping == 0
    digits = 15 - len(community)
    assert row.codes == [f"{community}{i:0{digits}d}" for i in range(1, row.n + 1)]


def in_utm(wkb) -> Polygon:
    """A stored cell in the UTM zone its squares were laid in."""
    return shapely.transform(
        shapely.from_wkb(bytes(wkb)), lambda xy: np.column_stack(UTM.transform(xy[:, 0], xy[:, 1]))
    )


# ---------------------------------------------------------------- generate


def test_generated_cells_tile_each_community_in_reading_order(conn, district):
    result = grid.generate(conn, DISTRICT, 100)
    assert result.communities == 4 and result.cells == len(open_cells(conn)) > 150
    for community in COMMUNITIES:
        assert_tiles(conn, community)
    # the whole district too: communities' squares meet without gaps or overlaps across their borders
    rel = conn.execute(
        text("""
        SELECT ST_Area(ST_SymDifference((SELECT ST_Union(geom) FROM grid_cells), geom)) / ST_Area(geom)
        FROM regions WHERE code = :d"""),
        {"d": DISTRICT},
    ).scalar()
    assert rel < 1e-6
    assert (
        conn.execute(
            text("""
        SELECT count(*) FROM grid_cells a JOIN grid_cells b ON a.id < b.id AND a.geom && b.geom
        WHERE ST_Area(ST_Intersection(a.geom, b.geom)) * 9.6e9 > 0.01
    """)
        ).scalar()
        == 0
    )
    for community in COMMUNITIES:
        cells = open_cells(conn, community)
        # full squares sit on the fixed 100 m lattice of the UTM zone, numbered by row from the north
        # then by column from the west
        # (cell sizes are UTM grid metres: the ground is 0.04 % larger here, UTM's scale factor)
        squares = [(c.code, in_utm(c.wkb)) for c in cells]
        full = [(code, g.centroid.x, g.centroid.y) for code, g in squares if abs(g.area - 10_000) < 0.01]
        assert len(full) > 5
        for _, x, y in full:
            assert abs(x % 100 - 50) < 0.5 and abs(y % 100 - 50) < 0.5
        keys = [(-math.floor(y / 100), math.floor(x / 100)) for _, x, y in full]
        assert keys == sorted(keys)
    first = conn.execute(text("SELECT DISTINCT valid_from::text, source FROM grid_cells")).all()
    assert first == [("-infinity", "generated")]
    assert result.valid_from == ["-infinity"]
    # the stored area is the geodesic one
    assert conn.execute(text("SELECT max(abs(area_m2 - ST_Area(geom::geography))) FROM grid_cells")).scalar() < 1e-6


def test_slivers_merge_into_the_neighbour_with_the_longest_edge(conn, district):
    raw = grid.generate(conn, DISTRICT, 150, sliver_ratio=0)
    assert raw.slivers_merged == 0
    small = conn.execute(text("SELECT count(*) FROM grid_cells WHERE valid_to IS NULL AND area_m2 < 0.3 * 150^2"))
    assert small.scalar() > 0
    merged = grid.generate(conn, DISTRICT, 150, sliver_ratio=0.3)
    assert merged.slivers_merged > 0
    assert merged.cells == raw.cells - merged.slivers_merged
    assert merged.closed == raw.cells
    stats = conn.execute(
        text("""
        SELECT min(area_m2), max(ST_NumGeometries(geom)) FROM grid_cells WHERE valid_to IS NULL""")
    ).first()
    assert stats[0] >= 0.3 * 150**2 and stats[1] == 1
    for community in COMMUNITIES:
        assert_tiles(conn, community)


def test_sliver_goes_to_longest_shared_edge():
    # a 100 × 100 m square community plus a 100 × 10 m strip on its north side: the strip pieces of
    # the northern row are slivers that join the square below them (their longest edge)
    to_wgs = pyproj.Transformer.from_crs(grid.utm_epsg(116.4, 39.9), 4326, always_xy=True)
    x0, y0 = 450_000.0, 4_417_000.0
    # (kept 0.5 m inside the lattice lines, so no square beyond them gets a crumb of the area)
    ring = [(x0 + 0.5, y0 + 0.5), (x0 + 199.5, y0 + 0.5), (x0 + 199.5, y0 + 110), (x0 + 0.5, y0 + 110)]
    area = Polygon([to_wgs.transform(x, y) for x, y in ring])
    lattice = grid.SquareLattice(grid.utm_epsg(116.4, 39.9), 100)
    cells, merged = grid._cells_of(area, lattice, 0.3)
    assert merged == 2 and len(cells) == 2
    # each strip went to the square below (99.5 m shared), not to the other strip (10 m shared)
    assert [round(lattice.to_utm(c).area) for c in cells] == [round(99.5 * 109.5)] * 2
    assert shapely.union_all(cells).symmetric_difference(area).area < 1e-6 * area.area
    # numbered west→east: the western cell first
    assert cells[0].centroid.x < cells[1].centroid.x


def test_district_without_communities_is_gridded_as_a_whole(conn):
    store_regions(conn, {DISTRICT: OUTLINE})
    result = grid.generate(conn, DISTRICT, 200)
    assert result.whole_district and result.communities == 1
    assert_tiles(conn, DISTRICT)
    codes = [c.code for c in open_cells(conn)]
    assert codes[0] == f"{DISTRICT}000000001" and all(len(c) == 15 for c in codes)


def test_community_grid_supersedes_a_district_wide_grid(conn):
    polys = synthetic_regions()
    store_regions(conn, {DISTRICT: OUTLINE})
    whole = grid.generate(conn, DISTRICT, 200, valid_from=V2025)
    store_regions(conn, {c: p for c, p in polys.items() if len(c) > 6})
    result = grid.generate(conn, DISTRICT, 200)
    assert result.closed == whole.cells and result.communities == 4
    assert {c.community for c in open_cells(conn)} == set(COMMUNITIES)
    assert grid.check(conn) == []


def test_more_than_999_cells_in_a_community_is_an_error(conn, district):
    with pytest.raises(InputError, match=r"community 110105\d{6} would get \d+ cells.*larger --cell-size"):
        grid.generate(conn, DISTRICT, 20)
    assert conn.execute(text("SELECT count(*) FROM grid_cells")).scalar() == 0


def test_unknown_district_and_bad_arguments(conn):
    with pytest.raises(InputError, match="not loaded"):
        grid.generate(conn, "990000", 100)
    with pytest.raises(InputError, match="6-digit"):
        grid.generate(conn, "1101", 100)
    with pytest.raises(InputError, match="positive"):
        grid.generate(conn, DISTRICT, 0)


# ---------------------------------------------------------------- versions


def _roster(conn):
    """Two units, a person, a duty grid; return their ids."""
    ids = {}
    for code, kind in (("U1", "street_office"), ("U2", "sanitation")):
        ids[code] = conn.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :c, :k) RETURNING id"), {"c": code, "k": kind}
        ).scalar()
    ids["P1"] = conn.execute(
        text("INSERT INTO people (code, name, role) VALUES ('P1', 'P1', 'grid_officer') RETURNING id")
    ).scalar()
    ids["D1"] = conn.execute(text("INSERT INTO duty_grids (code, name) VALUES ('D1', 'D1') RETURNING id")).scalar()
    return ids


def test_new_version_closes_old_cells_and_inherits_responsibility(conn, district):
    grid.generate(conn, DISTRICT, 200)
    ids = _roster(conn)
    old = open_cells(conn)
    # units alternate between old cells so that inheritance has to pick the right one
    for k, c in enumerate(old):
        conn.execute(
            text("INSERT INTO cell_units (cell_id, duty, unit_id) VALUES (:c, 'territorial', :u)"),
            {"c": c.id, "u": ids["U1" if k % 2 else "U2"]},
        )
        conn.execute(
            text("INSERT INTO cell_people (cell_id, person_id, post) VALUES (:c, :p, 'grid_officer')"),
            {"c": c.id, "p": ids["P1"]},
        )
        conn.execute(
            text("INSERT INTO duty_grid_cells (duty_grid_id, cell_id) VALUES (:d, :c)"), {"c": c.id, "d": ids["D1"]}
        )
    result = grid.generate(conn, DISTRICT, 100, valid_from=V2025)
    assert result.closed == len(old) and result.valid_from == [V2025.isoformat()]
    new = open_cells(conn)
    assert result.cells == len(new) and result.inherited == len(new)
    closed = (
        conn.execute(text("SELECT DISTINCT valid_to FROM grid_cells WHERE id = ANY(:i)"), {"i": [c.id for c in old]})
        .scalars()
        .all()
    )
    assert closed == [V2025]
    assert {c.valid_from for c in new} == {V2025}
    # both versions answer by time; the old one keeps its history
    p = OUTLINE.representative_point()
    before = conn.execute(
        text("SELECT cell_id FROM cell_for(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :at)"),
        {"x": p.x, "y": p.y, "at": datetime(2024, 6, 1, tzinfo=timezone.utc)},
    ).scalar()
    after = conn.execute(
        text("SELECT cell_id FROM cell_for(ST_SetSRID(ST_MakePoint(:x, :y), 4326))"), {"x": p.x, "y": p.y}
    ).scalar()
    assert before in {c.id for c in old} and after in {c.id for c in new}
    assert grid.counts(conn, DISTRICT, datetime(2024, 6, 1, tzinfo=timezone.utc))[0] == len(old)
    # each new cell took the unit of the old cell it overlaps most
    unit_of = dict(conn.execute(text("SELECT cell_id, unit_id FROM cell_units")).all())
    old_geoms = [(c.id, shapely.from_wkb(bytes(c.wkb))) for c in old]
    for c in new:
        g = shapely.from_wkb(bytes(c.wkb))
        best = max(old_geoms, key=lambda o: o[1].intersection(g).area)[0]
        assert unit_of[c.id] == unit_of[best]
    assert conn.execute(
        text("SELECT count(*) FROM cell_people WHERE cell_id = ANY(:i)"), {"i": [c.id for c in new]}
    ).scalar() == len(new)
    assert conn.execute(
        text("SELECT count(*) FROM duty_grid_cells WHERE cell_id = ANY(:i)"), {"i": [c.id for c in new]}
    ).scalar() == len(new)
    assert grid.check(conn, DISTRICT) == []


def test_later_version_defaults_to_now_and_earlier_start_is_refused(conn, district):
    grid.generate(conn, DISTRICT, 200, valid_from=V2025)
    with pytest.raises(InputError, match="pass a later --valid-from"):
        grid.generate(conn, DISTRICT, 200, valid_from=datetime(2024, 1, 1, tzinfo=timezone.utc))
    result = grid.generate(conn, DISTRICT, 250)
    now = conn.execute(text("SELECT now()")).scalar()
    assert result.valid_from == [now.isoformat()]
    assert conn.execute(text("SELECT count(*) FROM grid_cells WHERE valid_to = now()")).scalar() == result.closed


# ---------------------------------------------------------------- import


def drawn_cells(polys) -> list[tuple[str, Polygon]]:
    """Irregular cells along 'streets': each community cut by a tilted ~300 m lattice, coded in order."""
    cells = []
    for community in COMMUNITIES:
        area = polys[community]
        minx, miny, maxx, maxy = OUTLINE.bounds
        blocks = [
            affinity.rotate(shapely.box(x, y, x + 0.0035, y + 0.0027), 17, origin=(116.41, 39.906))
            for x in np.arange(minx - 0.006, maxx + 0.006, 0.0035)
            for y in np.arange(miny - 0.006, maxy + 0.006, 0.0027)
        ]
        pieces = [area.intersection(b) for b in blocks]
        pieces = [p for p in pieces if p.geom_type == "Polygon" and p.area > 0]
        for seq, p in enumerate(pieces, start=1):
            cells.append((f"{community}{seq:03d}", p))
    return cells


def write(tmp_path, cells, name="cells.geojson", code=True):
    path = tmp_path / name
    data = {"geometry": [g for _, g in cells]}
    if code:
        data["code"] = [c for c, _ in cells]
    gpd.GeoDataFrame(data, crs="EPSG:4326").to_file(path, driver="GeoJSON")
    return path


def import_file(conn, path, **kw):
    return grid.import_cells(conn, read_features(path), **kw)


def _longest_pair(cells):
    """Two cells of one community with the longest shared edge, and that edge."""
    best = None
    for i, (ca, a) in enumerate(cells):
        for j, (cb, b) in enumerate(cells[i + 1 :], start=i + 1):
            if ca[:12] == cb[:12] and a.touches(b):
                edge = a.boundary.intersection(b.boundary)
                if best is None or edge.length > best[2].length:
                    best = (i, j, edge)
    return best


def _bump(edge, into, along=1e-5, depth=3e-6):
    """A small triangle (~0.3 m²) on an edge, pointing into polygon `into`."""
    line = ops.linemerge(edge) if edge.geom_type == "MultiLineString" else edge
    m = line.interpolate(0.5, normalized=True)
    p, q = np.array(line.coords[0]), np.array(line.coords[-1])
    d = (q - p) / np.linalg.norm(q - p)
    n = np.array([-d[1], d[0]])
    if not into.contains(Point(*(np.array(m.coords[0]) + depth * n))):
        n = -n
    c = np.array(m.coords[0])
    return Polygon([tuple(c - along * d), tuple(c + along * d), tuple(c + depth * n)])


def test_import_of_a_clean_file_keeps_codes_and_tiles(conn, district, tmp_path):
    cells = drawn_cells(district)
    result = import_file(conn, write(tmp_path, cells), code_field="code")
    assert result.cells == len(cells) and result.communities == 4 and result.fixed == []
    assert [c.code for c in open_cells(conn)] == sorted(c for c, _ in cells)
    assert {c.valid_from for c in conn.execute(text("SELECT valid_from::text FROM grid_cells"))} == {"-infinity"}
    for community in COMMUNITIES:
        assert_tiles(conn, community)
    assert grid.check(conn) == []


def test_import_without_codes_numbers_cells_west_east_north_south(conn, district, tmp_path):
    cells = drawn_cells(district)
    result = import_file(conn, write(tmp_path, cells, code=False))
    assert result.cells == len(cells)
    for community in COMMUNITIES:
        assert_tiles(conn, community)
        stored = open_cells(conn, community)
        reps = [shapely.from_wkb(bytes(c.wkb)).representative_point() for c in stored]
        ys = [UTM.transform(p.x, p.y)[1] for p in reps]
        band = math.sqrt(float(np.median([c.area_m2 for c in stored])))
        # the first cell lies in the northernmost row; rows run north → south
        assert ys[0] > max(ys) - band
        rows = [math.floor((max(ys) - y) / band) for y in ys]
        assert rows == sorted(rows)


@pytest.mark.parametrize("kind", ["self-intersection", "overlap", "gap", "duplicate"])
def test_import_refuses_each_problem_naming_the_cell_and_stores_nothing(conn, district, tmp_path, kind):
    cells = drawn_cells(district)
    i, j, edge = _longest_pair(cells)
    (ca, a), (cb, b) = cells[i], cells[j]
    if kind == "self-intersection":
        x0, y0, x1, y1 = a.bounds
        cells[i] = (ca, Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]))
        expect = (
            rf"cell {ca} \(feature {i + 1}\): invalid geometry: Self-intersection at \(116\.\d{{6}}, 39\.\d{{6}}\)$"
        )
    elif kind == "overlap":
        cells[i] = (ca, a.union(b.intersection(a.buffer(0.0001))))
        expect = rf"cell {ca} \(feature {i + 1}\) and cell {cb} \(feature {j + 1}\) overlap by [\d.]+ m² at"
    elif kind == "gap":
        cells[i] = (ca, a.buffer(-0.00005))
        expect = rf"community {ca[:12]}: gap of [\d.]+ m² not covered by any cell next to cell {ca}"
    else:
        cells[j] = (ca, b)
        expect = rf"cell {ca}: duplicate code \(feature {i + 1}, feature {j + 1}\) at \(116"
    with pytest.raises(TopologyError) as err:
        import_file(conn, write(tmp_path, cells), code_field="code")
    assert any(re.search(expect, p) for p in err.value.problems), err.value.problems
    assert "nothing stored" in str(err.value)
    assert conn.execute(text("SELECT count(*) FROM grid_cells")).scalar() == 0


def test_import_reports_every_problem_at_once(conn, district, tmp_path):
    cells = drawn_cells(district)
    code0, a = cells[0]
    far = affinity.translate(cells[5][1], 0.05, 0)  # outside every community
    across = cells[10][1].union(cells[10][1].buffer(0.002))  # deep into the neighbours
    cells[5] = (cells[5][0], far)
    cells[10] = (cells[10][0], across)
    other = next(c for c in COMMUNITIES if not cells[12][0].startswith(c))
    cells[12] = (f"{other}999", cells[12][1])  # another community's prefix
    cells[14] = ("11010500100", cells[14][1])  # too short
    cells[20] = (code0, cells[20][1])  # duplicate
    x0, y0, x1, y1 = a.bounds
    cells[0] = (code0, Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]))
    with pytest.raises(TopologyError) as err:
        import_file(conn, write(tmp_path, cells), code_field="code")
    text_ = "\n".join(err.value.problems)
    for needle in (
        "invalid geometry",
        "lies outside every community",
        "outside its community",
        "does not start with its community's code",
        "is not 15 digits",
        "duplicate code",
        "overlap by",
        "gap of",
    ):
        assert needle in text_, needle
    assert conn.execute(text("SELECT count(*) FROM grid_cells")).scalar() == 0


def test_small_overlap_and_gap_are_fixed_and_reported(conn, district, tmp_path):
    cells = drawn_cells(district)
    i, j, edge = _longest_pair(cells)
    (ca, a), (cb, b) = cells[i], cells[j]
    cells[i] = (ca, a.union(_bump(edge, b)))  # ~0.3 m² into b
    others = [k for k in range(len(cells)) if k not in (i, j)]
    k, m, edge2 = _longest_pair([cells[x] for x in others])
    k, m = others[k], others[m]
    (ck, gk) = cells[k]
    cells[k] = (ck, gk.difference(_bump(edge2, gk)))  # a ~0.3 m² notch out of k
    result = import_file(conn, write(tmp_path, cells), code_field="code")
    assert len(result.fixed) == 2, result.fixed
    assert any("overlapped by 0." in f and f"removed from cell {max(ca, cb)}" in f for f in result.fixed)
    assert any("gap of 0." in f and "merged into cell" in f for f in result.fixed)
    for community in COMMUNITIES:
        assert_tiles(conn, community)
    assert grid.check(conn) == []


def test_import_survives_a_hair_thin_overlap_along_a_long_edge(conn, tmp_path):
    # one community of two 1.7 km-long cells; the southern one has a vertex 0.3 µm north of the
    # shared edge: noise for any planar check, but 40 m² for a geodesic area of the sliver
    store_regions(
        conn,
        {
            DISTRICT: shapely.box(116.40, 39.900, 116.42, 39.902),
            f"{DISTRICT}001": shapely.box(116.40, 39.900, 116.42, 39.902),
            f"{DISTRICT}001001": shapely.box(116.40, 39.900, 116.42, 39.902),
        },
    )
    north = shapely.box(116.40, 39.901, 116.42, 39.902)
    south = Polygon([(116.40, 39.900), (116.42, 39.900), (116.42, 39.901), (116.41, 39.901 + 3e-12), (116.40, 39.901)])
    result = import_file(conn, write(tmp_path, [("", north), ("", south)], code=False))
    assert result.cells == 2 and result.fixed == ["1 overlap(s) below 0.01 m² (rounding noise) removed"]
    assert [c.code for c in open_cells(conn)] == [f"{DISTRICT}001001001", f"{DISTRICT}001001002"]


def test_import_over_a_generated_grid_opens_a_new_version(conn, district, tmp_path):
    grid.generate(conn, DISTRICT, 200)
    ids = _roster(conn)
    old = open_cells(conn)
    conn.execute(
        text("INSERT INTO cell_units (cell_id, duty, unit_id) SELECT id, 'territorial', :u FROM grid_cells"),
        {"u": ids["U1"]},
    )
    result = import_file(conn, write(tmp_path, drawn_cells(district)), code_field="code", valid_from=V2025)
    assert result.closed == len(old) and result.inherited == result.cells
    assert grid.counts(conn, DISTRICT) == (result.cells, 4)
    assert grid.counts(conn, DISTRICT, datetime(2020, 1, 1, tzinfo=timezone.utc)) == (len(old), 4)
    assert conn.execute(text("SELECT DISTINCT source FROM grid_cells WHERE valid_to IS NULL")).scalar() == "imported"


# ---------------------------------------------------------------- check


def test_check_is_clean_then_finds_planted_gap_and_overlap(owner_conn):
    conn = owner_conn  # the overlap is planted behind the trigger's back, which only the owner may do
    store_regions(conn, synthetic_regions())
    grid.generate(conn, DISTRICT, 150)
    assert grid.check(conn) == [] and grid.check(conn, DISTRICT) == []
    victim = open_cells(conn, COMMUNITIES[0])[3]
    conn.execute(text("DELETE FROM grid_cells WHERE id = :i"), {"i": victim.id})
    problems = grid.check(conn, DISTRICT)
    assert len(problems) == 1 and problems[0].startswith(f"community {COMMUNITIES[0]}: gap of")
    # an overlap the trigger would refuse, planted behind its back
    conn.execute(text("ALTER TABLE grid_cells DISABLE TRIGGER grid_cells_no_overlap"))
    other = open_cells(conn, COMMUNITIES[1])[4]
    conn.execute(
        text("UPDATE grid_cells SET geom = ST_Multi(ST_Buffer(geom, 0.0001, 'join=mitre')) WHERE id = :i"),
        {"i": other.id},
    )
    problems = grid.check(conn, DISTRICT)
    assert any(f"cell {other.code} (id {other.id})" in p and "overlap by" in p for p in problems), problems
    assert grid.check(conn, "110199") == []


# ---------------------------------------------------------------- CLI


def test_cli_generate_check_import(cli, fresh_db, tmp_path):
    _, eng = fresh_db
    polys = synthetic_regions()
    with eng.begin() as c:
        store_regions(c, polys)
    out = cli("grid", "generate", "--district-code", DISTRICT, "--cell-size", "150").output
    assert "cells in 4 communities" in out and "slivers merged" in out
    out = cli("grid", "check").output
    assert out.startswith("ok: ") and "in 4 communities, no gaps, no overlaps" in out
    cells = drawn_cells(polys)
    cells[3] = (cells[2][0], cells[3][1])
    bad = cli("grid", "import", write(tmp_path, cells), "--code-field", "code", "--valid-from", "2030-01-01", ok=False)
    assert bad.exit_code == 1 and "duplicate code" in bad.output and "nothing stored" in bad.output
    good = cli("grid", "import", write(tmp_path, drawn_cells(polys), "good.geojson"), "--valid-from", "2030-01-01")
    assert "cells in 4 communities" in good.output and "old cells closed" in good.output
    # a cell missing from the 2030 grid is no problem today, when the generated grid is in force
    with eng.begin() as c:
        c.execute(text("DELETE FROM grid_cells WHERE id = (SELECT max(id) FROM grid_cells)"))
    assert cli("grid", "check").output.startswith("ok: ")
    with eng.begin() as c:
        c.execute(text("DELETE FROM grid_cells WHERE id = (SELECT min(id) FROM grid_cells)"))
    bad = cli("grid", "check", "--district-code", DISTRICT, ok=False)
    assert bad.exit_code == 1 and "1 problem(s) in the grid valid now" in bad.output and "gap of" in bad.output


def test_cli_generate_dongcheng_from_its_boundary(cli, tmp_path):
    boundary = ROOT / "data" / "boundaries" / "110101.geojson"
    start = time.perf_counter()
    out = cli("grid", "generate", "--district-code", "110101", "--cell-size", "100", "--boundary", boundary).output
    elapsed = time.perf_counter() - start
    assert "cells in the whole district (no communities)" in out
    cells = int(out.split(" cells in")[0].split()[-1])
    assert 4_000 < cells < 4_700
    assert elapsed < 20, elapsed
    assert cli("grid", "check", "--district-code", "110101").output.startswith(f"ok: {cells} cells in 1 ")
