"""Tests of gridmgr.demo.city: synthetic streets and communities tile their parents; the roster is whole."""

import json
import re
from collections import Counter

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import shapely

from gridmgr.db.models import CELL_DUTIES, PERSON_ROLES, POSTS, UNIT_KINDS
from gridmgr.demo import city
from gridmgr.geo.crs import geometry_from_wgs84, to_wgs84
from gridmgr.paths import DATA
from gridmgr.people.roster_sheets import SHEETS

SIZE = city.SIZES["test"]
METRIC = "EPSG:32650"


@pytest.fixture(scope="module")
def district():
    return gpd.read_file(DATA / "boundaries" / "110101.geojson").geometry[0]


@pytest.fixture(scope="module")
def regions(district):
    return city.synthetic_regions(
        district, "110101", n_streets=SIZE.n_streets, n_communities=SIZE.n_communities, seed=SIZE.seed
    )


@pytest.fixture(scope="module")
def cells(regions):
    return lattice_cells(regions[1], SIZE.cell_size_m)


@pytest.fixture(scope="module")
def roster(regions, cells):
    return city.demo_roster(cells, list(regions[0].code), seed=SIZE.seed)


def lattice_cells(communities, size_m):
    """Stand-in for `grid generate`: one cell per lattice point inside a community, coded like real cells."""
    cells = []
    for code, geom in zip(communities.code, communities.geometry):
        metric = geometry_from_wgs84(geom, METRIC)
        x0, y0, x1, y1 = metric.bounds
        # rows north→south, west→east in a row: the cell numbering order
        ys, xs = np.meshgrid(
            np.arange(y1, y0, -size_m) - size_m / 2, np.arange(x0, x1, size_m) + size_m / 2, indexing="ij"
        )
        xs, ys = xs.ravel(), ys.ravel()
        inside = shapely.contains_xy(metric, xs, ys)
        xs, ys = (xs[inside], ys[inside]) if inside.any() else shapely.get_coordinates(metric.centroid).T
        lon, lat = to_wgs84(xs, ys, METRIC)
        cells += [(f"{code}{i:03d}", code, (float(a), float(b))) for i, (a, b) in enumerate(zip(lon, lat), 1)]
    return cells


def area_m2(geom):
    # ~10 m vertices before projecting, so long boundary edges are measured like the short ones
    return geometry_from_wgs84(shapely.segmentize(geom, 1e-4), METRIC).area


def assert_tiles(parent, pieces):
    assert all(shapely.is_valid(pieces)), [shapely.is_valid_reason(p) for p in pieces]
    assert all(p.geom_type in ("Polygon", "MultiPolygon") for p in pieces)
    union = shapely.union_all(pieces)
    assert abs(area_m2(union) - area_m2(parent)) <= 1e-6 * area_m2(parent)
    metric = np.array([geometry_from_wgs84(p, METRIC) for p in pieces])
    left, right = shapely.STRtree(metric).query(metric, predicate="intersects")
    pairs = left < right
    overlaps = shapely.area(shapely.intersection(metric[left[pairs]], metric[right[pairs]]))
    assert overlaps.max(initial=0.0) <= 0.01
    areas = shapely.area(metric)
    assert areas.min() > 0.1 * areas.mean()  # no sliver pieces


def test_streets_tile_the_district(district, regions):
    streets, _ = regions
    assert streets.crs.to_epsg() == 4326
    assert_tiles(district, streets.geometry.values)


def test_communities_tile_their_street(regions):
    streets, communities = regions
    for code, geom in zip(streets.code, streets.geometry):
        kids = communities[communities.parent == code]
        assert len(kids) >= 3
        assert_tiles(geom, kids.geometry.values)


def test_codes_names_and_order(regions):
    streets, communities = regions
    assert list(streets.code) == [f"110101{i:03d}" for i in range(1, SIZE.n_streets + 1)]
    assert set(streets.parent) == {"110101"}
    assert list(streets.columns) == ["code", "name", "name_en", "parent", "geometry"]
    assert streets.name.iloc[0] == "模拟街道01" and streets.name_en.iloc[0] == "Synthetic street 01"
    assert len(communities) == SIZE.n_communities
    assert communities.code.is_unique and all(re.fullmatch(r"\d{12}", c) for c in communities.code)
    for parent, group in communities.groupby("parent"):
        assert list(group.code) == [f"{parent}{i:03d}" for i in range(1, len(group) + 1)]
    first = communities.iloc[0]
    assert first["name"] == "模拟社区01-01" and first["name_en"] == "Synthetic community 01-01"
    # code order reads like cells: the first street lies in the northern band
    ys = [p.y for p in streets.geometry.representative_point()]
    assert ys[0] >= np.median(ys)


def test_demo_size(district):
    size = city.SIZES["demo"]
    streets, communities = city.synthetic_regions(
        district, "110101", n_streets=size.n_streets, n_communities=size.n_communities, seed=size.seed
    )
    assert len(streets) == 17 and abs(len(communities) - 200) <= 17
    assert communities.groupby("parent").size().min() >= 3
    assert all(shapely.is_valid(communities.geometry.values))
    # 8 squads of 2–3 streets, each squad's streets one connected patch (coarse cells suffice here)
    roster = city.demo_roster(lattice_cells(communities, 250.0), list(streets.code))
    area = {}
    for r in roster["cell_units"]:
        if r["duty"] == "enforcement":
            area.setdefault(r["unit_code"], set()).add(r["cell_code"][:9])
    assert len(area) == 8 and sorted(map(len, area.values())) == [2] * 7 + [3]
    geom = dict(zip(streets.code, streets.geometry))
    for codes in area.values():
        assert shapely.union_all([geom[c] for c in codes]).geom_type == "Polygon", codes


def test_concave_parent_gives_single_polygons():
    # a comb: Voronoi cells cut across its teeth, leaving detached parts to hand to a neighbour
    lon, lat, w = 116.40, 39.90, 0.0035
    teeth = [shapely.box(lon + 2 * i * w, lat, lon + (2 * i + 1) * w, lat + 0.018) for i in range(6)]
    comb = shapely.union_all([*teeth, shapely.box(lon, lat, lon + 11 * w, lat + 0.0014)])
    streets, communities = city.synthetic_regions(comb, "110101", n_streets=5, n_communities=20, seed=12)
    assert set(streets.geom_type) == set(communities.geom_type) == {"Polygon"}
    assert_tiles(comb, streets.geometry.values)
    for code, geom in zip(streets.code, streets.geometry):
        assert_tiles(geom, communities[communities.parent == code].geometry.values)


def test_regions_are_deterministic(district, regions):
    again = city.synthetic_regions(
        district, "110101", n_streets=SIZE.n_streets, n_communities=SIZE.n_communities, seed=SIZE.seed
    )
    for first, second in zip(regions, again):
        assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))
        assert all(shapely.equals_exact(first.geometry.values, second.geometry.values, tolerance=0))
    other = city.synthetic_regions(
        district, "110101", n_streets=SIZE.n_streets, n_communities=SIZE.n_communities, seed=SIZE.seed + 1
    )
    assert not shapely.equals_exact(other[0].geometry.values[0], regions[0].geometry.values[0])


def test_write_regions_round_trips(regions, tmp_path):
    streets, communities = regions
    paths = city.write_regions(streets, communities, tmp_path / "demo")
    assert [p.name for p in paths] == ["streets.geojson", "communities.geojson"]
    for path, gdf in zip(paths, regions):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert [f["properties"]["code"] for f in data["features"]] == list(gdf.code)
        back = gpd.read_file(path)
        assert list(back.code) == list(gdf.code)  # read as text: leading digits intact
        assert all(shapely.equals_exact(back.geometry.values, gdf.geometry.values, tolerance=0))


def test_roster_covers_every_cell(roster, cells):
    codes = {c[0] for c in cells}
    assert Counter((r["cell_code"], r["duty"]) for r in roster["cell_units"]) == Counter(
        (c, d) for c in codes for d in ("territorial", "enforcement", "sanitation")
    )
    assert Counter((r["cell_code"], r["post"]) for r in roster["cell_people"]) == Counter(
        (c, p) for c in codes for p in POSTS
    )
    assert Counter(r["cell_code"] for r in roster["duty_grid_cells"]) == Counter(codes)


def test_roster_references_are_consistent(roster, cells, regions):
    units = {u["code"]: u for u in roster["units"]}
    people = {p["code"]: p for p in roster["people"]}
    assert len(units) == len(roster["units"]) and len(people) == len(roster["people"])
    assert len({p["name"] for p in roster["people"]}) == len(people)
    assert {u["kind"] for u in units.values()} <= set(UNIT_KINDS)
    assert {p["role"] for p in people.values()} <= set(PERSON_ROLES)
    assert {r["duty"] for r in roster["cell_units"]} <= set(CELL_DUTIES)
    assert all(p["unit_code"] in units for p in people.values())
    assert all(re.fullmatch(r"P\d{4}", c) for c in people)
    assert all(re.fullmatch(r"1380000\d{4}", p["phone"]) for p in people.values())
    community_of = {c[0]: c[1] for c in cells}
    for r in roster["cell_units"]:
        unit = units[r["unit_code"]]
        assert (
            unit["kind"]
            == {"territorial": "street_office", "enforcement": "enforcement_squad", "sanitation": "sanitation"}[
                r["duty"]
            ]
        )
        if r["duty"] == "territorial":
            assert unit["region_code"] == community_of[r["cell_code"]][:9]
    for r in roster["cell_people"]:
        assert people[r["person_code"]]["role"] == r["post"]
    leaders = Counter(r["person_code"] for r in roster["cell_people"] if r["post"] == "grid_leader")
    assert len(leaders) == len(set(community_of.values()))  # one grid leader per community
    grids = {g["code"]: g for g in roster["duty_grids"]}
    assert len(grids) == len(roster["duty_grids"])
    assert all(re.fullmatch(r"DG\d{3}", g) for g in grids)
    for g in grids.values():
        assert people[g["supervisor_code"]]["role"] == "supervisor"
        assert people[g["supervisor_code"]]["unit_code"] == g["unit_code"]
        assert units[g["unit_code"]]["kind"] == "enforcement_squad"
    supervisor_of = {r["cell_code"]: r["person_code"] for r in roster["cell_people"] if r["post"] == "supervisor"}
    for r in roster["duty_grid_cells"]:
        assert supervisor_of[r["cell_code"]] == grids[r["duty_grid_code"]]["supervisor_code"]
    sizes = Counter(r["duty_grid_code"] for r in roster["duty_grid_cells"])
    assert 15 <= np.median(list(sizes.values())) <= 45
    officers = Counter(r["person_code"] for r in roster["cell_people"] if r["post"] == "grid_officer")
    assert 5 <= np.median(list(officers.values())) <= 11
    staff_units = {units[p["unit_code"]]["kind"] for p in people.values() if p["role"] == "staff"}
    assert {"enforcement_squad", "sanitation"} <= staff_units


def test_squads_cover_two_or_three_streets():
    # the demo's 17 streets among 8 squads; synthetic cells on a line are enough to group them
    streets = [f"110101{i:03d}" for i in range(1, 18)]
    cells = [
        (f"{s}001001", f"{s}001", (116.40 + (i % 3) * 0.01, 39.95 - (i // 3) * 0.01)) for i, s in enumerate(streets)
    ]
    roster = city.demo_roster(cells, streets)
    squads = [u for u in roster["units"] if u["kind"] == "enforcement_squad"]
    assert [u["name"] for u in squads][:2] == ["东城执法第一中队", "东城执法第二中队"] and len(squads) == 8
    per_squad = Counter(r["unit_code"] for r in roster["cell_units"] if r["duty"] == "enforcement")
    assert sorted(per_squad.values()) == [2] * 7 + [3]


def test_roster_is_deterministic(roster, regions, cells):
    assert city.demo_roster(cells, list(regions[0].code), seed=SIZE.seed) == roster


def test_xlsx_round_trips_as_text(roster, tmp_path):
    path = city.write_roster(roster, tmp_path / "roster.xlsx")
    again = city.write_roster(roster, tmp_path / "again.xlsx")
    assert path.read_bytes() == again.read_bytes()  # no clock inside the file
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == list(SHEETS)
    for sheet, columns in SHEETS.items():
        rows = list(wb[sheet].iter_rows(values_only=True))
        assert rows[0] == columns
        assert all(isinstance(v, str) for row in rows[1:] for v in row if v is not None)
        assert [dict(zip(columns, row)) for row in rows[1:]] == roster[sheet]
