"""The roads layer: the demo's road network, parking kerbs along it, tiles, a round trip, the demo beside another district."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from shapely.geometry import LineString
from sqlalchemy import text

from gridmgr.demo import loader
from gridmgr.io.exporter import export_layer
from gridmgr.io.importer import import_file
from gridmgr.layers import demo_city
from gridmgr.maps import tiles
from gridmgr.plugins import registry

from support import DEMO_ANCHOR, SMALL_ORIGIN, SMALL_STEP, insert_small_grid

ANCHOR = DEMO_ANCHOR
KERB_NEAR_M = 10.0  # a kerb zone lies within a carriageway's half width of a road's centre line


@pytest.fixture(scope="module")
def demo(test_demo):
    """The tests' shared demo: its engine."""
    url, eng = test_demo
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM roads")).scalar() > 0
    return eng


def test_roads_layer_is_registered_with_tiles():
    layer = registry.get("roads")
    assert layer.shares and layer.geometry_types == ("LINESTRING",) and layer.style
    assert "roads" in tiles.tile_layers()
    assert set(layer.field("grade").choices) == {"expressway", "arterial", "secondary", "branch"}


def test_demo_roads_have_names_grades_and_units(demo):
    with demo.connect() as c:
        rows = c.execute(
            text("""
            SELECT r.road_no, r.name, r.grade, u.code AS unit, u.kind, ST_Length(r.geom::geography) AS m,
                   ST_GeometryType(r.geom) AS type, r.cell_id
            FROM roads r LEFT JOIN units u ON u.id = r.cleaning_unit_id""")
        ).all()
        outside = c.execute(
            text("""SELECT count(*) FROM roads r, regions d
            WHERE d.code = '110101' AND NOT ST_Within(r.geom, d.geom)""")
        ).scalar()
        shared = c.execute(text("SELECT count(DISTINCT feature_id) FROM feature_cells WHERE layer = 'roads'")).scalar()
    assert len(rows) > 30
    assert all(r.name and r.type == "ST_LineString" and r.m >= 50 and r.cell_id for r in rows)
    assert {r.grade for r in rows} >= {"arterial", "branch"}
    assert {r.name for r in rows if r.grade != "branch"} >= set(demo_city.ROADS_NS[:3])
    assert {(r.unit, r.kind) for r in rows} == {("HW01", "sanitation")}  # the roster's sanitation office
    assert outside == 0 and shared == len(rows)


def test_demo_kerb_zones_lie_along_roads(demo):
    with demo.connect() as c:
        kerbs = c.execute(
            text("""
            SELECT z.zone_no, z.street_name,
                   (SELECT min(ST_Distance(z.geom::geography, r.geom::geography)) FROM roads r
                    WHERE ST_DWithin(z.geom::geography, r.geom::geography, 50)) AS near_m,
                   EXISTS (SELECT 1 FROM roads r WHERE r.name = z.street_name
                           AND ST_DWithin(z.geom::geography, r.geom::geography, :m)) AS by_named
            FROM parking_zones z WHERE ST_GeometryType(z.geom) = 'ST_LineString'"""),
            {"m": KERB_NEAR_M},
        ).all()
    assert kerbs
    for k in kerbs:
        assert k.near_m is not None and k.near_m <= KERB_NEAR_M, k
        assert k.by_named, k  # the zone names the road it lies along


def test_a_demo_road_is_in_its_tile(demo):
    with demo.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM roads, ST_PointOnSurface(geom) p LIMIT 1")).one()
        z = 15
        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        now = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
        body = tiles.render(c, tiles.Tile("roads", z, x, y, now))
    assert body and b"RD-" in body  # road_no is a tile attribute


ROADS = [
    ({"road_no": "RD-T1", "name": "东华门大街", "grade": "主干路", "cleaning_unit": "HW01"}, 0.25, 0.25),
    ({"road_no": "RD-T2", "name": "柳树胡同", "grade": "branch", "cleaning_unit": ""}, 0.25, 1.75),
]


def _write_roads(path):
    import pandas as pd

    x0, y0, d = *SMALL_ORIGIN, SMALL_STEP
    rows = []
    for attrs, fy, _ in ROADS:  # west → east across two cells at height fy
        line = LineString([(x0 + 0.2 * d, y0 + fy * d), (x0 + 1.8 * d, y0 + fy * d)])
        rows.append({**attrs, "wkt": line.wkt})
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-8")
    return path


def _unit(c):
    c.execute(text("INSERT INTO units (code, name, kind) VALUES ('HW01', '东城区环卫所', 'sanitation')"))


@pytest.mark.parametrize("fmt", ["csv", "geojson", "xlsx"])
def test_roads_roundtrip(conn, small_grid, fresh_db, tmp_path, fmt):
    from test_layer_roundtrip import assert_same, dump

    layer = registry.get("roads")
    _unit(conn)
    first = import_file(conn, layer, _write_roads(tmp_path / "roads.csv"))
    assert (first.imported, first.rejected) == (2, 0), first.line()
    before = dump(conn, layer)
    assert before["RD-T1"]["grade"] == "arterial"  # 主干路 taken as its key
    assert before["RD-T1"]["cleaning_unit"] == "HW01" and before["RD-T2"]["cleaning_unit"] is None
    assert all(len(f["shares"]) == 2 and sum(s for _, s in f["shares"]) == pytest.approx(1) for f in before.values())
    out = tmp_path / f"export.{fmt}"
    assert export_layer(conn, layer, fmt, out) == 2
    _, eng = fresh_db
    with eng.begin() as c2:
        insert_small_grid(c2)
        _unit(c2)
        again = import_file(c2, layer, out)
        assert (again.imported, again.rejected) == (2, 0), again.line()
        assert_same(dump(c2, layer), before)


def test_unknown_grade_and_unit_are_rejected(conn, small_grid, tmp_path):
    import pandas as pd

    x0, y0, d = *SMALL_ORIGIN, SMALL_STEP
    wkt = LineString([(x0 + 0.2 * d, y0 + 0.5 * d), (x0 + 0.8 * d, y0 + 0.5 * d)]).wkt
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        [
            {"road_no": "B1", "name": "x", "grade": "motorway", "cleaning_unit": "", "wkt": wkt},
            {"road_no": "B2", "name": "y", "grade": "branch", "cleaning_unit": "NOPE", "wkt": wkt},
        ]
    ).to_csv(path, index=False)
    result = import_file(conn, registry.get("roads"), path, skip_invalid=True)
    assert (result.imported, result.rejected) == (0, 2)


def test_demo_loads_beside_another_district(fresh_db, tmp_path):
    _, eng = fresh_db
    box = "ST_Multi(ST_MakeEnvelope(109.80, 40.60, 109.81, 40.61, 4326))"
    with eng.begin() as c:
        parent = None
        for level, code in (("district", "150203"), ("street", "150203001"), ("community", "150203001001")):
            parent = c.execute(
                text(f"""INSERT INTO regions (level, code, name, parent_id, geom, area_m2)
                VALUES (:l, :c, :n, :p, {box}, ST_Area({box}::geography)) RETURNING id"""),
                {"l": level, "c": code, "n": f"昆都仑 {level}", "p": parent},
            ).scalar()
        c.execute(
            text(f"""INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source)
            VALUES ('150203001001001', :cm, {box}, ST_Area({box}::geography), '-infinity', 'generated')"""),
            {"cm": parent},
        )
    with eng.begin() as c:
        result = loader.load(c, "test", tmp_path, today=ANCHOR)
    assert result.loaded and result.counts["roads"] > 0
    with eng.connect() as c:
        # the other district's cell keeps no demo roster: the demo's units and people stay in 110101
        assert (
            c.execute(
                text("""SELECT count(*) FROM cell_units cu JOIN grid_cells g ON g.id = cu.cell_id
            WHERE g.code LIKE '150203%'""")
            ).scalar()
            == 0
        )
        assert c.execute(text("SELECT count(*) FROM grid_cells WHERE code LIKE '150203%'")).scalar() == 1
