"""Assignment: the one rule for points, lines and polygons, out-of-grid features, and --reassign."""

from datetime import datetime, timezone

import pytest
from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, MetaData, Table, text

from gridmgr.errors import CoordinateError, NotFound
from gridmgr.grid import assign
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP


def code_at(conn, ids, lon, lat, at=None):
    cid = assign.cell_id_at(conn, lon, lat, at)
    return {v: k for k, v in ids.items()}.get(cid)


def test_interior_points(conn, small_grid):
    assert code_at(conn, small_grid, X0 + 0.5 * D, Y0 + 1.5 * D) == "110101001001001"  # NW
    assert code_at(conn, small_grid, X0 + 1.5 * D, Y0 + 1.5 * D) == "110101001001002"  # NE
    assert code_at(conn, small_grid, X0 + 0.5 * D, Y0 + 0.5 * D) == "110101001001003"  # SW
    assert code_at(conn, small_grid, X0 + 1.5 * D, Y0 + 0.5 * D) == "110101001001004"  # SE


def test_edge_and_vertex_points_go_to_lowest_code(conn, small_grid):
    # on the vertical edge between 003 and 004, and on the shared vertex of all four
    assert code_at(conn, small_grid, X0 + D, Y0 + 0.5 * D) == "110101001001003"
    assert code_at(conn, small_grid, X0 + D, Y0 + D) == "110101001001001"
    # on the outer boundary: the one cell covering it
    assert code_at(conn, small_grid, X0 + 2 * D, Y0 + 0.5 * D) == "110101001001004"


def test_outside_point_has_no_cell(conn, small_grid):
    assert code_at(conn, small_grid, X0 - D, Y0) is None


def test_polygon_spanning_four_cells(conn, small_grid):
    # a square centred on the shared vertex, larger part in the NE cell
    poly = (
        f"ST_GeomFromText('POLYGON(({X0 + 0.6 * D} {Y0 + 0.6 * D}, {X0 + 1.6 * D} {Y0 + 0.6 * D}, "
        f"{X0 + 1.6 * D} {Y0 + 1.6 * D}, {X0 + 0.6 * D} {Y0 + 1.6 * D}, {X0 + 0.6 * D} {Y0 + 0.6 * D}))', 4326)"
    )
    shares = dict(conn.execute(text(f"SELECT cell_id, share FROM cell_shares({poly})")).all())
    assert set(shares) == set(small_grid.values())
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
    primary = conn.execute(text(f"SELECT cell_id FROM cell_for({poly})")).scalar()
    assert primary == small_grid["110101001001002"]
    assert shares[primary] == pytest.approx(0.36, abs=0.01)


def test_line_goes_to_longest_overlap(conn, small_grid):
    line = f"ST_GeomFromText('LINESTRING({X0 + 0.8 * D} {Y0 + 0.5 * D}, {X0 + 1.9 * D} {Y0 + 0.5 * D})', 4326)"
    assert conn.execute(text(f"SELECT cell_id FROM cell_for({line})")).scalar() == small_grid["110101001001004"]
    shares = dict(conn.execute(text(f"SELECT cell_id, share FROM cell_shares({line})")).all())
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)


def test_locate_describes_cell_and_rejects_swapped(conn, small_grid):
    info = assign.locate(conn, X0 + 0.5 * D, Y0 + 0.5 * D)
    assert info.code == "110101001001003" and info.community[0] == "110101001001"
    assert info.street[0] == "110101001" and info.district[0] == "110101"
    with pytest.raises(CoordinateError, match="swapped"):
        assign.locate(conn, Y0, X0)
    with pytest.raises(NotFound, match="outside the grid"):
        assign.locate(conn, X0 + 0.02, Y0 + 0.02)


def test_gcj02_point_lands_in_same_cell_as_wgs84(conn, small_grid):
    from gridmgr.geo import crs

    lon, lat = X0 + 1.5 * D, Y0 + 0.5 * D
    gx, gy = crs.from_wgs84([lon], [lat], "gcj02")
    assert assign.locate(conn, float(gx[0]), float(gy[0]), "gcj02").code == "110101001001004"


@pytest.fixture
def point_layer(owner_conn):
    """A layer of our own, registered through the same registry a real layer uses (its table made as the owner)."""
    conn = owner_conn
    md = MetaData()
    table = Table(
        "test_points",
        md,
        Column("id", BigInteger, primary_key=True),
        Column("geom", Geometry("POINT", 4326, spatial_index=False), nullable=False),
        Column("cell_id", BigInteger, ForeignKey("grid_cells.id")),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    conn.execute(
        text(
            "CREATE TABLE test_points (id bigserial PRIMARY KEY, geom geometry(Point, 4326) NOT NULL,"
            " cell_id bigint REFERENCES grid_cells(id), created_at timestamptz NOT NULL)"
        )
    )
    layer = registry.register(
        registry.Layer("test_points", "测试点", "test points", table, ("POINT",), fields=(), natural_key="id")
    )
    yield layer
    registry.unregister("test_points")


def test_new_grid_version_and_reassign(owner_conn, point_layer):
    conn, small_grid = owner_conn, insert_small_grid(owner_conn)
    cut = datetime(2026, 1, 1, tzinfo=timezone.utc)
    p = (X0 + 0.5 * D, Y0 + 0.5 * D)
    # a feature assigned in the old grid, through the one rule, in the statement that inserts it
    conn.execute(
        text(f"""
        INSERT INTO test_points (geom, cell_id, created_at)
        SELECT g, c.cell_id, '2025-06-01' FROM (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS g) s
        {assign.cell_join("s.g", "'2025-06-01'::timestamptz")}
    """),
        {"x": p[0], "y": p[1]},
    )
    old_id = small_grid["110101001001003"]
    # a new version of the grid: close the old cells, open one merged cell from the cut
    conn.execute(text("UPDATE grid_cells SET valid_to = :t"), {"t": cut})
    new_id = conn.execute(
        text("""
        INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source)
        SELECT '110101001001001', community_id, ST_Multi(ST_Union(geom)), sum(area_m2), :t, 'imported'
        FROM grid_cells GROUP BY community_id RETURNING id
    """),
        {"t": cut},
    ).scalar()
    # both versions answer for their own time
    assert assign.cell_id_at(conn, *p, at=datetime(2025, 6, 1, tzinfo=timezone.utc)) == old_id
    assert assign.cell_id_at(conn, *p, at=datetime(2026, 6, 1, tzinfo=timezone.utc)) == new_id
    # the feature keeps its cell until an explicit reassign
    assert conn.execute(text("SELECT cell_id FROM test_points")).scalar() == old_id
    [pend] = [x for x in assign.pending(conn) if x.layer == "test_points"]
    assert (pend.in_closed_cells, pend.out_of_grid) == (1, 0)
    moved = assign.reassign(conn, "tester", layer_names=["test_points"])
    assert moved == {"test_points": 1}
    assert conn.execute(text("SELECT cell_id FROM test_points")).scalar() == new_id
    log = conn.execute(text("SELECT actor, layer, from_cell_id, to_cell_id FROM cell_reassignments")).all()
    assert log == [("tester", "test_points", old_id, new_id)]
    assert assign.reassign(conn, "tester", layer_names=["test_points"]) == {"test_points": 0}


def test_bulk_assignment_is_one_inlined_statement(conn, small_grid):
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            text(f"""
        EXPLAIN SELECT p.g, c.cell_id FROM (SELECT ST_SetSRID(ST_MakePoint(116.4005 + i * 1e-6, 39.9005), 4326) g
        FROM generate_series(1, 100) i) p {assign.cell_join("p.g")}
    """)
        )
    )
    # the SQL function is inlined: the plan scans grid_cells itself instead of calling cell_for per row
    assert "grid_cells" in plan and "Function Scan on cell_for" not in plan


# ---- bulk point assignment (imports): the tile join gives exactly cell_for's answer ---------------------


def bulk_and_cell_for(conn, points, size=None):
    """id → (cell by the bulk tile join, cell by cell_for) for points (id, lon, lat, at)."""
    size = assign.prepare_point_tiles(conn, size)
    conn.execute(text("CREATE TEMP TABLE pts (id int, lon float8, lat float8, at timestamptz) ON COMMIT DROP"))
    conn.execute(
        text("INSERT INTO pts VALUES (:id, :lon, :lat, CAST(:at AS timestamptz))"),
        [{"id": i, "lon": x, "lat": y, "at": at} for i, (x, y, at) in enumerate(points)],
    )
    rows = conn.execute(
        text(f"""
        SELECT p.id, b.cell_id, c.cell_id FROM pts p
        {assign.point_cell_join("p.lon", "p.lat", "p.at", size, alias="b")}
        {assign.cell_join("ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)", "p.at")}
        ORDER BY p.id""")
    )
    return {i: (bulk, ref) for i, bulk, ref in rows}


def lattice(at="2026-06-01T00:00:00Z"):
    """Points every half cell from half a cell outside the grid to half a cell beyond: centres, edges,
    shared corners, the outer boundary and outside; plus points a hair off the shared lines."""
    pts = [(X0 + i * D / 2, Y0 + j * D / 2, at) for i in range(-1, 6) for j in range(-1, 6)]
    for eps in (1e-12, -1e-12):
        pts += [(X0 + D + eps, Y0 + 0.5 * D, at), (X0 + 0.5 * D, Y0 + D + eps, at), (X0 + D + eps, Y0 + D - eps, at)]
    return pts + [(X0 + 0.05, Y0 + 0.05, at)]  # far outside


@pytest.mark.parametrize("size", [None, 0.0007, 0.01], ids=["median cell", "misaligned tiles", "one tile"])
def test_bulk_point_assignment_equals_cell_for(conn, small_grid, size):
    pts = lattice()
    got = bulk_and_cell_for(conn, pts, size)
    assert all(bulk == ref for bulk, ref in got.values()), {i: v for i, v in got.items() if v[0] != v[1]}
    by_xy = {(x, y): got[i][0] for i, (x, y, _) in enumerate(pts)}
    code = {v: k for k, v in small_grid.items()}.get
    assert code(by_xy[(X0 + D, Y0 + D)]) == "110101001001001"  # the corner all four share
    assert code(by_xy[(X0 + D, Y0 + 0.5 * D)]) == "110101001001003"  # the edge of 003 and 004
    assert code(by_xy[(X0 + 2 * D, Y0 + 2 * D)]) == "110101001001002"  # the grid's own outer corner
    assert by_xy[(X0 - 0.5 * D, Y0)] is None and by_xy[(X0 + 0.05, Y0 + 0.05)] is None
    assert sum(v[0] is None for v in got.values()) >= 20  # outside points were asked about


def test_bulk_point_assignment_follows_grid_versions(conn, small_grid):
    cut = "2026-01-01T00:00:00Z"
    conn.execute(text("UPDATE grid_cells SET valid_to = :t"), {"t": cut})
    merged = conn.execute(
        text("""
        INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source)
        SELECT '110101001001009', community_id, ST_Multi(ST_Union(geom)), sum(area_m2), :t, 'imported'
        FROM grid_cells GROUP BY community_id RETURNING id"""),
        {"t": cut},
    ).scalar()
    pts = [p for at in ("2025-12-31T23:59:59Z", cut, "2026-01-01T00:00:01Z") for p in lattice(at)]
    got = bulk_and_cell_for(conn, pts)
    assert all(bulk == ref for bulk, ref in got.values())
    at_cut = [got[i][0] for i, (_, _, at) in enumerate(pts) if at == cut and got[i][0] is not None]
    assert at_cut and set(at_cut) == {merged}  # valid_from <= at < valid_to: the new version at the cut
    before = {got[i][0] for i, (_, _, at) in enumerate(pts) if at.startswith("2025")} - {None}
    assert before == set(small_grid.values())


def test_bulk_import_assigns_as_cell_for(conn, small_grid, tmp_path, monkeypatch):
    from gridmgr.io import importer

    monkeypatch.setattr(importer, "BULK_MIN_ROWS", 1)  # the tile path, whatever the file's size
    pts = lattice()
    p = tmp_path / "cases.csv"
    p.write_text(
        "case_no,category,source,reported_at,lon,lat\n"
        + "".join(f"2026{i:07d},0102,public,2026-06-01T08:00:00,{x!r},{y!r}\n" for i, (x, y, _) in enumerate(pts)),
        encoding="utf-8",
    )
    res = importer.import_file(conn, registry.get("cases"), p)
    assert res.imported == len(pts) and res.out_of_grid >= 20
    assert conn.execute(text("SELECT to_regclass('pg_temp.cell_tiles') IS NOT NULL")).scalar()  # tiles were used
    differ = conn.execute(
        text("""
        SELECT count(*) FROM cases f LEFT JOIN LATERAL cell_for(f.geom, f.reported_at) c ON true
        WHERE f.cell_id IS DISTINCT FROM c.cell_id""")
    ).scalar()
    assert differ == 0
    corner = conn.execute(
        text(
            "SELECT g.code FROM cases f JOIN grid_cells g ON g.id = f.cell_id "
            "WHERE ST_Equals(f.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
        ),
        {"x": X0 + D, "y": Y0 + D},
    ).scalar()
    assert corner == "110101001001001"
