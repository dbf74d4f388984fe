"""Layer round trips: import → export → import into a fresh database gives the same features and cells.

Every spatial layer through every format (GeoJSON, GeoPackage, Shapefile, CSV, XLSX), site
inspections through CSV and XLSX; then the layer rules an import applies (shares of a polygon,
parking capacity, billboard expiry), the export filters and the CLI.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from sqlalchemy import text

from gridmgr.errors import InputError
from gridmgr.io.exporter import export_layer
from gridmgr.io.importer import import_file
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
NW, NE, SW, SE = (f"110101001001{i:03d}" for i in range(1, 5))
COMMUNITY = "110101001001"
FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx")
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
UTC = timezone.utc
# GDAL cuts Shapefile field names to 10 characters, as the importer expects
pytestmark = [
    pytest.mark.filterwarnings("ignore:Normalized/laundered field name:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Column names longer than 10 characters:UserWarning"),
]


def at(fx: float, fy: float) -> Point:
    """A point at fractions of a cell from the grid's south-west corner."""
    return Point(X0 + fx * D, Y0 + fy * D)


def rect(fx0, fy0, fx1, fy1) -> Polygon:
    return box(X0 + fx0 * D, Y0 + fy0 * D, X0 + fx1 * D, Y0 + fy1 * D)


def line(*pts) -> LineString:
    return LineString([(X0 + fx * D, Y0 + fy * D) for fx, fy in pts])


# ---- inputs: (attributes as the import template's text, geometry, expected cell) ----------------------

CASES = [
    (
        dict(
            case_no="2026000101",
            category="0102",
            source="supervisor",
            urgency="normal",
            reported_at="2026-10-01T08:30:15",
            description="暴露垃圾，堆在路边",
            address="东华门大街1号",
            photos="a.jpg;b.jpg",
        ),
        at(0.5, 0.5),
        SW,
    ),
    (
        dict(
            case_no="2026000102",
            category="0505",
            source="公众举报",
            urgency="紧急",
            reported_at="2026-10-02T09:00:05+08:00",
            description="机动车乱停放",
            address="",
            photos="",
        ),
        at(1.5, 1.5),
        NE,
    ),
    (
        dict(
            case_no="2026000103",
            category="C0102",
            source="hotline_12345",
            urgency="",
            reported_at="2026-10-03T02:15:59Z",
            description="污水井盖破损",
            address="南池子大街",
            photos="c.jpg",
        ),
        at(1.5, 0.5),
        SE,
    ),
    (
        dict(
            case_no="2026000104",
            category="0201",
            source="video",
            urgency="normal",
            reported_at="2026-12-31T23:59:59",
            description='墙上"办证"小广告, 约20处;\n第二处在门口',
            address="",
            photos="",
        ),
        at(0.25, 1.75),
        NW,
    ),
    # out of the grid (inside the city extent): kept and flagged, never dropped
    (
        dict(
            case_no="2026000105",
            category="0104",
            source="leader",
            urgency="urgent",
            reported_at="2026-11-11T11:11:11",
            description="道路不洁",
            address="",
            photos="",
        ),
        at(3.0, 3.0),
        None,
    ),
]

ZONES = [
    # a 68 m parallel kerb, capacity left to the estimate
    (
        dict(
            zone_no="Z-001",
            name="东华门大街北侧",
            street_name="东华门大街",
            street_side="north",
            parking_angle="parallel",
            capacity="",
            capacity_reason="",
            fee_rule="首小时5元",
            time_rules="07:00-21:00",
            status="painted",
            valid_from="2026-01-01",
            valid_to="",
        ),
        line((0.1, 0.2), (0.9, 0.2)),
        SW,
    ),
    # a lot with a drawn capacity below the estimate
    (
        dict(
            zone_no="Z-002",
            name="社区停车场",
            street_name="南池子大街",
            street_side="",
            parking_angle="parallel",
            capacity="40",
            capacity_reason="消防通道占用",
            fee_rule="",
            time_rules="",
            status="approved",
            valid_from="2026-03-01",
            valid_to="2027-02-28",
        ),
        rect(1.2, 1.2, 1.8, 1.8),
        NE,
    ),
    # a kerb crossing from SW into SE, longer in SE
    (
        dict(
            zone_no="Z-003",
            name="南河沿垂直泊位",
            street_name="南河沿大街",
            street_side="south",
            parking_angle="perpendicular",
            capacity="",
            capacity_reason="",
            fee_rule="",
            time_rules="",
            status="draft",
            valid_from="",
            valid_to="",
        ),
        line((0.5, 0.5), (1.7, 0.5)),
        SE,
    ),
    (
        dict(
            zone_no="Z-004",
            name="斜列式停车带",
            street_name="北河沿大街",
            street_side="west",
            parking_angle="斜列式60°",
            capacity="",
            capacity_reason="",
            fee_rule="",
            time_rules="",
            status="submitted",
            valid_from="",
            valid_to="",
        ),
        line((0.3, 1.5), (0.3, 1.9)),
        NW,
    ),
]

SPACES = [
    (dict(space_no="P-0001", zone_no="Z-001", type="standard"), at(0.2, 0.21), SW),
    (dict(space_no="P-0002", zone_no="Z-001", type="disabled"), at(0.4, 0.21), SW),
    (dict(space_no="P-0003", zone_no="Z-002", type="ev_charging"), rect(1.3, 1.3, 1.33, 1.36), NE),
    (dict(space_no="P-0004", zone_no="Z-002", type=""), rect(1.4, 1.3, 1.43, 1.36), NE),
]

SITES = [
    # spans all four cells, largest share in SE (0.6 × 0.7 of its area)
    (
        dict(
            permit_no="110101202600001",
            project_name="东华门综合楼",
            builder="北京建工",
            manager="王强",
            manager_phone="13800000001",
            start_date="2026-03-15",
            planned_end="2027-12-31",
            status="active",
            hoarding="true",
            covering="是",
            washing="false",
            hardening="",
            wet_work="yes",
            closed_transport="否",
        ),
        rect(0.6, 0.3, 1.6, 1.3),
        SE,
    ),
    (
        dict(
            permit_no="110101202600002",
            project_name="道路改造",
            builder="",
            manager="",
            manager_phone="",
            start_date="",
            planned_end="",
            status="planned",
            hoarding="",
            covering="",
            washing="",
            hardening="",
            wet_work="",
            closed_transport="",
        ),
        rect(0.1, 1.1, 0.5, 1.6),
        NW,
    ),
    # two parts: the larger in NE
    (
        dict(
            permit_no="110101202600003",
            project_name="管线工程",
            builder="市政一公司",
            manager="李明",
            manager_phone="010-65000000",
            start_date="2026-05-01",
            planned_end="2026-09-30",
            status="suspended",
            hoarding="true",
            covering="true",
            washing="true",
            hardening="true",
            wet_work="true",
            closed_transport="true",
        ),
        MultiPolygon([rect(0.1, 0.1, 0.3, 0.3), rect(1.1, 1.1, 1.9, 1.9)]),
        NE,
    ),
]

BILLBOARDS = [
    (
        dict(
            ad_no="AD-001",
            type="led_screen",
            carrier="building",
            width_m="6.0",
            height_m="3.5",
            height_above_ground_m="12.5",
            illuminated="true",
            owner="东华广告有限公司",
            owner_credit_code="91110101MA01234567",
            permit_no="京广设2023-001",
            address="东华门大街2号",
            valid_from="2023-05-01",
            valid_to="2026-05-01",
            last_inspection="2026-03-10",
            status="permitted",
        ),
        at(0.5, 1.5),
        NW,
    ),
    (
        dict(
            ad_no="AD-002",
            type="wall",
            carrier="building",
            width_m="10",
            height_m="2",
            height_above_ground_m="",
            illuminated="否",
            owner="王府井百货",
            owner_credit_code="",
            permit_no="京广设2025-017",
            address="",
            valid_from="2025-01-01",
            valid_to="2027-12-31",
            last_inspection="",
            status="已许可",
        ),
        at(1.5, 1.5),
        NE,
    ),
    # unpermitted, with an old date: never "expired"
    (
        dict(
            ad_no="AD-003",
            type="pole",
            carrier="ground",
            width_m="",
            height_m="",
            height_above_ground_m="",
            illuminated="",
            owner="",
            owner_credit_code="",
            permit_no="",
            address="南池子",
            valid_from="",
            valid_to="2025-01-01",
            last_inspection="",
            status="unpermitted",
        ),
        at(0.5, 0.5),
        SW,
    ),
    (
        dict(
            ad_no="AD-004",
            type="hoarding",
            carrier="other",
            width_m="20",
            height_m="2.5",
            height_above_ground_m="0",
            illuminated="false",
            owner="北京建工",
            owner_credit_code="",
            permit_no="",
            address="",
            valid_from="",
            valid_to="",
            last_inspection="",
            status="removed",
        ),
        at(1.5, 0.5),
        SE,
    ),
]

FRONTAGE_INSPECTIONS = [
    dict(
        inspection_no="MQJC-0001",
        contract_no="MQSB-0001",
        inspected_at="2026-10-05T10:20:30",
        inspector="赵磊",
        tidy="是",
        clean="true",
        orderly="否",
        green="",
        photo="MQJC-0001.jpg",
        note="店外摆放商品",
    ),
    dict(
        inspection_no="MQJC-0002",
        contract_no="MQSB-0002",
        inspected_at="2026-05-06T16:45:00+08:00",
        inspector="孙丽",
        tidy="true",
        clean="true",
        orderly="true",
        green="true",
        photo="",
        note="",
    ),
]

INSPECTIONS = [
    dict(
        inspection_no="XC-0001",
        permit_no="110101202600001",
        inspected_at="2026-10-05T10:20:30",
        inspector="张三",
        hoarding="true",
        covering="true",
        washing="false",
        hardening="true",
        wet_work="",
        closed_transport="true",
        note="出口冲洗设施未启用",
    ),
    dict(
        inspection_no="XC-0002",
        permit_no="110101202600003",
        inspected_at="2026-10-06T16:45:00+08:00",
        inspector="李四",
        hoarding="true",
        covering="true",
        washing="true",
        hardening="true",
        wet_work="true",
        closed_transport="true",
        note="",
    ),
]

# 门前三包 (layers/frontage): frontage lines; the second runs from the NW cell into the NE one (its cell)
FRONTAGE = [
    (
        dict(
            contract_no="MQSB-0001",
            shop_name="福来便利店",
            licence_no="92110101MA0000001X",
            owner="王伟",
            owner_phone="13800000001",
            address="东华门大街1号",
            road="东华门大街",
            package="门前三包",
            signed_on="2025-03-01",
            valid_until="2028-02-29",
            status="",
        ),
        line((0.2, 0.3), (0.8, 0.3)),
        SW,
    ),
    (
        dict(
            contract_no="MQSB-0002",
            shop_name="四季水果店",
            licence_no="",
            owner="",
            owner_phone="",
            address="",
            road="南池子大街",
            package="four",
            signed_on="",
            valid_until="2026-06-30",
            status="已终止",
        ),
        line((0.7, 1.2), (1.4, 1.2)),
        NE,
    ),
]

LAYERS = {
    "cases": CASES,
    "parking_zones": ZONES,
    "parking_spaces": SPACES,
    "construction": SITES,
    "billboards": BILLBOARDS,
    "frontage": FRONTAGE,
}
# a layer whose features name another layer's: that one is imported first, in both databases
# the attribute-only layers' inputs (tables without geometry)
TABLES = {"site_inspections": INSPECTIONS, "frontage_inspections": FRONTAGE_INSPECTIONS}
DEPENDS = {"parking_spaces": "parking_zones", "site_inspections": "construction", "frontage_inspections": "frontage"}


def shp_safe(features):
    """A Shapefile holds one geometry type: keep the features of the layer's first type."""
    kind = features[0][1].geom_type.replace("Multi", "")
    return [f for f in features if f[1].geom_type.replace("Multi", "") == kind]


def write_input(path, fmt, features, point_layer=True):
    """Write features as a user would hand them over: GIS file, or a table with lon/lat or WKT."""
    attrs = pd.DataFrame([a for a, _, _ in features])
    geoms = [g for _, g, _ in features]
    if fmt in DRIVERS:
        gpd.GeoDataFrame(attrs, geometry=geoms, crs="EPSG:4326").to_file(path, driver=DRIVERS[fmt], engine="pyogrio")
        return path
    if point_layer:
        attrs["lon"] = [f"{g.x:.9f}" for g in geoms]
        attrs["lat"] = [f"{g.y:.9f}" for g in geoms]
    else:
        attrs["wkt"] = [g.wkt for g in geoms]
    write_table(path, fmt, attrs)
    return path


def write_table(path, fmt, df):
    if fmt == "csv":
        df.to_csv(path, index=False, encoding="utf-8")
    else:
        df.to_excel(path, index=False)


# ---- what the database holds, layer by layer ----------------------------------------------------------


def dump(c, layer) -> dict:
    """natural key → what an import stores: every field (refs by their key), the computed columns,
    the cell by its code, the geometry and the shares (not the workflow's columns, which move on)."""
    cols, joins = [], []
    for f in layer.fields:
        if f.type == "ref" and f.column.endswith("_id"):
            table, key, stored = f.ref
            joins.append(f"LEFT JOIN {table} r_{f.name} ON r_{f.name}.id = f.{stored}")
            cols.append(f"r_{f.name}.{key} AS {f.name}")
        else:
            cols.append(f"f.{f.column} AS {f.name}")
    cols += [f"f.{name}" for name in layer.computed if name not in {f.name for f in layer.fields}]
    if layer.spatial:
        cols += ["f.out_of_grid", "gc.code AS cell_code", "ST_AsBinary(f.geom) AS geom_wkb", "f.id AS fid"]
        joins.append("LEFT JOIN grid_cells gc ON gc.id = f.cell_id")
    rows = c.execute(text(f"SELECT {', '.join(cols)} FROM {layer.table.name} f {' '.join(joins)}")).mappings().all()
    out = {}
    for r in rows:
        r = dict(r)
        if layer.spatial:
            r["geom"] = shapely.from_wkb(bytes(r.pop("geom_wkb")))
            fid = r.pop("fid")
            if layer.shares:
                r["shares"] = sorted(
                    c.execute(
                        text("""
                    SELECT gc.code, fc.share FROM feature_cells fc JOIN grid_cells gc ON gc.id = fc.cell_id
                    WHERE fc.layer = :l AND fc.feature_id = :id"""),
                        {"l": layer.name, "id": fid},
                    ).all()
                )
        out[r[layer.natural_key]] = r
    return out


def assert_same(got: dict, want: dict):
    """Two dumps hold the same features: equal values (floats and geometry to numerical noise)."""
    assert sorted(got) == sorted(want)
    for key in want:
        a, b = got[key], want[key]
        assert set(a) == set(b), key
        for name in b:
            va, vb = a[name], b[name]
            if name == "geom":
                assert va.geom_type.replace("Multi", "") == vb.geom_type.replace("Multi", ""), key
                assert shapely.hausdorff_distance(va, vb) < 1e-9, (key, va.wkt, vb.wkt)
            elif name == "shares":
                assert [x[0] for x in va] == [x[0] for x in vb], key
                assert [x[1] for x in va] == pytest.approx([x[1] for x in vb], abs=1e-9), key
            elif isinstance(vb, float):
                assert va == pytest.approx(vb, rel=1e-9), (key, name)
            else:
                assert va == vb, (key, name, va, vb)
                assert type(va) is type(vb), (key, name, va, vb)


def load(c, tmp_path, name: str, fmt: str = "csv", subdir: str = "in"):
    """Import a layer's prepared input (written in `fmt`) into a connection."""
    layer = registry.get(name)
    folder = tmp_path / subdir
    folder.mkdir(exist_ok=True)
    if name in TABLES:
        path = folder / f"{name}.{fmt}"
        write_table(path, fmt, pd.DataFrame(TABLES[name]))
    else:
        features = shp_safe(LAYERS[name]) if fmt == "shp" else LAYERS[name]
        path = write_input(folder / f"{name}.{fmt}", fmt, features, layer.is_point)
    return import_file(c, layer, path)


# ---- the round trips ----------------------------------------------------------------------------------


def roundtrip(conn, fresh_db, tmp_path, name, fmt):
    layer = registry.get(name)
    dep = DEPENDS.get(name)
    if dep:
        load(conn, tmp_path, dep)
    first = load(conn, tmp_path, name, fmt)
    assert first.rejected == 0
    before = dump(conn, layer)
    out = tmp_path / f"export.{fmt}"
    assert export_layer(conn, layer, fmt, out) == len(before) == first.imported
    _, eng = fresh_db
    with eng.begin() as c2:
        insert_small_grid(c2)
        if dep:
            load(c2, tmp_path, dep, subdir="in2")
        again = import_file(c2, layer, out)
        assert (again.rows, again.imported, again.rejected) == (len(before), len(before), 0), again.line()
        after = dump(c2, layer)
    assert_same(after, before)
    return before


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_roundtrip(conn, small_grid, fresh_db, tmp_path, name, fmt):
    before = roundtrip(conn, fresh_db, tmp_path, name, fmt)
    features = shp_safe(LAYERS[name]) if fmt == "shp" else LAYERS[name]
    # the first import itself put every feature in its cell
    assert {a[registry.get(name).natural_key]: cell for a, _, cell in features} == {
        k: v["cell_code"] for k, v in before.items()
    }


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_site_inspections_roundtrip(conn, small_grid, fresh_db, tmp_path, fmt):
    before = roundtrip(conn, fresh_db, tmp_path, "site_inspections", fmt)
    assert before["XC-0001"]["inspected_at"] == datetime(2026, 10, 5, 2, 20, 30, tzinfo=UTC)
    assert before["XC-0001"]["permit_no"] == "110101202600001"
    assert (before["XC-0001"]["washing"], before["XC-0001"]["wet_work"]) == (False, None)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_frontage_inspections_roundtrip(conn, small_grid, fresh_db, tmp_path, fmt):
    before = roundtrip(conn, fresh_db, tmp_path, "frontage_inspections", fmt)
    assert before["MQJC-0001"]["inspected_at"] == datetime(2026, 10, 5, 2, 20, 30, tzinfo=UTC)
    assert (before["MQJC-0001"]["orderly"], before["MQJC-0001"]["green"]) == (False, None)
    assert before["MQJC-0002"]["contract_no"] == "MQSB-0002"


def test_attribute_only_layer_exports_only_tables(conn, small_grid, tmp_path):
    load(conn, tmp_path, "construction")
    load(conn, tmp_path, "site_inspections")
    with pytest.raises(InputError, match="has no geometry: export it as csv or xlsx"):
        export_layer(conn, registry.get("site_inspections"), "geojson", tmp_path / "x.geojson")
    df = exported(conn, tmp_path, "site_inspections")
    # the derived `passed`: no checklist item failed
    assert dict(zip(df["inspection_no"], df["passed"].str.lower())) == {"XC-0001": "false", "XC-0002": "true"}


def test_first_import_stores_the_typed_values(conn, small_grid, tmp_path):
    """The values a round trip compares are the right ones to begin with (times, labels, arrays, refs)."""
    load(conn, tmp_path, "cases")
    cases = dump(conn, registry.get("cases"))
    assert cases["2026000101"]["reported_at"] == datetime(2026, 10, 1, 0, 30, 15, tzinfo=UTC)  # local +08:00
    assert cases["2026000102"]["reported_at"] == datetime(2026, 10, 2, 1, 0, 5, tzinfo=UTC)
    assert cases["2026000103"]["reported_at"] == datetime(2026, 10, 3, 2, 15, 59, tzinfo=UTC)
    assert (cases["2026000102"]["source"], cases["2026000102"]["urgency"]) == ("public", "urgent")
    assert cases["2026000103"]["urgency"] == "normal"  # the default
    assert cases["2026000101"]["photos"] == ["a.jpg", "b.jpg"] and cases["2026000102"]["photos"] == []
    assert cases["2026000103"]["category"] == "C0102"
    assert cases["2026000105"]["out_of_grid"] is True and cases["2026000105"]["cell_code"] is None

    load(conn, tmp_path, "construction")
    site = dump(conn, registry.get("construction"))["110101202600001"]
    assert [site[k] for k in ("hoarding", "covering", "washing", "hardening", "wet_work", "closed_transport")] == [
        True,
        True,
        False,
        None,
        True,
        False,
    ]
    assert (site["start_date"], site["planned_end"]) == (date(2026, 3, 15), date(2027, 12, 31))

    load(conn, tmp_path, "parking_zones")
    load(conn, tmp_path, "parking_spaces")
    spaces = dump(conn, registry.get("parking_spaces"))
    assert spaces["P-0002"]["zone_no"] == "Z-001" and spaces["P-0004"]["type"] == "standard"
    zones = dump(conn, registry.get("parking_zones"))
    assert zones["Z-004"]["parking_angle"] == "angled_60"
    assert zones["Z-002"]["capacity"] == 40 and zones["Z-002"]["capacity_estimated"] > 40  # given, kept
    assert zones["Z-001"]["capacity"] == zones["Z-001"]["capacity_estimated"] == 11  # ⌊68.3 m / 6⌋
    z3 = zones["Z-003"]["shares"]
    assert [code for code, _ in z3] == [SW, SE] and z3[1][1] == pytest.approx(0.7 / 1.2, abs=1e-3)


def test_backslash_n_text_is_kept(conn, small_grid, tmp_path):
    """A text that looks like a COPY NULL marker is text (the staging COPY must not read it as NULL)."""
    p = tmp_path / "bs.csv"
    p.write_text(
        "case_no,category,source,reported_at,description,address,lon,lat\n"
        f"2026000001,0102,public,2026-10-01T08:00:00,\\N,C:\\N,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n",
        encoding="utf-8",
    )
    import_file(conn, registry.get("cases"), p)
    assert conn.execute(text("SELECT description, address FROM cases")).first() == ("\\N", "C:\\N")


@pytest.mark.parametrize("name", ["parking_zones", "parking_spaces"])
def test_shapefile_refuses_mixed_geometry_types(conn, small_grid, tmp_path, name):
    dep = DEPENDS.get(name)
    if dep:
        load(conn, tmp_path, dep)
    load(conn, tmp_path, name, "geojson")
    with pytest.raises(InputError) as err:
        export_layer(conn, registry.get(name), "shp", tmp_path / "z.shp")
    msg = str(err.value)
    assert "Shapefile holds one geometry type" in msg and "gpkg or geojson" in msg
    assert not (tmp_path / "z.shp").exists()


# ---- the rules an import applies ----------------------------------------------------------------------


def test_site_spanning_four_cells_has_four_shares(conn, small_grid, tmp_path):
    load(conn, tmp_path, "construction")
    rows = conn.execute(
        text("""
        SELECT gc.code, fc.share, f.cell_id = fc.cell_id AS primary_cell
        FROM construction_sites f
        JOIN feature_cells fc ON fc.layer = 'construction' AND fc.feature_id = f.id
        JOIN grid_cells gc ON gc.id = fc.cell_id
        WHERE f.permit_no = '110101202600001' ORDER BY fc.share DESC""")
    ).all()
    assert {r.code for r in rows} == {NW, NE, SW, SE}
    assert sum(r.share for r in rows) == pytest.approx(1.0, abs=1e-6)
    assert rows[0].code == SE and rows[0].primary_cell and rows[0].share == pytest.approx(0.42, abs=0.005)
    assert [r.primary_cell for r in rows] == [True, False, False, False]
    # a site wholly inside one cell: one row, the whole share
    one = conn.execute(
        text("""
        SELECT count(*), sum(share) FROM feature_cells fc JOIN construction_sites f ON f.id = fc.feature_id
        WHERE fc.layer = 'construction' AND f.permit_no = '110101202600002'""")
    ).first()
    assert one[0] == 1 and one[1] == pytest.approx(1.0, abs=1e-9)


GEOD = Geod(ellps="WGS84")


def kerb(length_m: float, lon=X0 + 0.0005, lat=Y0 + 0.0004, azimuth=90.0) -> LineString:
    """A straight kerb of a given length on the ground, starting near the grid."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, length_m)
    return LineString([(lon, lat), (lon2, lat2)])


def lot(side_m: float, lon=X0 + 0.0003, lat=Y0 + 0.0003) -> Polygon:
    """A square lot of side `side_m` on the ground (corners by geodesic steps east and north)."""
    e_lon, e_lat, _ = GEOD.fwd(lon, lat, 90.0, side_m)
    n_lon, n_lat, _ = GEOD.fwd(lon, lat, 0.0, side_m)
    ne_lon, ne_lat, _ = GEOD.fwd(n_lon, n_lat, 90.0, side_m)
    return Polygon([(lon, lat), (e_lon, e_lat), (ne_lon, ne_lat), (n_lon, n_lat)])


def zone_row(no, angle, capacity=""):
    return dict(zone_no=no, name=f"测试{no}", parking_angle=angle, capacity=capacity)


def test_parking_capacity_estimated_from_the_ground(conn, small_grid, tmp_path):
    assert GEOD.geometry_length(kerb(120.0)) == pytest.approx(120.0, abs=1e-6)
    assert abs(GEOD.geometry_area_perimeter(lot(50.0))[0]) == pytest.approx(2500.0, rel=1e-4)
    features = [
        (zone_row("K-120", "parallel"), kerb(120.0), None),
        # PostGIS measures this one as 49.9999999983 m: the estimate must not lose a stall to that
        (zone_row("K-050", "perpendicular"), kerb(50.0, azimuth=0.0), None),
        (zone_row("L-050", "parallel"), lot(50.0), None),
        # given capacities (a file mixing given and empty ones: an int column with gaps)
        (zone_row("K-KEPT", "parallel", "7"), kerb(125.0, lat=Y0 + 0.0015), None),
        (zone_row("L-KEPT", "parallel", "130"), lot(56.0, lat=Y0 + 0.0012), None),
    ]
    path = write_input(tmp_path / "cap.csv", "csv", features, point_layer=False)
    assert import_file(conn, registry.get("parking_zones"), path).imported == 5
    got = {
        r.zone_no: r
        for r in conn.execute(
            text("SELECT zone_no, capacity, capacity_estimated, length_m, area_m2 FROM parking_zones")
        )
    }
    assert got["K-120"].length_m == pytest.approx(120.0, abs=0.01)
    assert (got["K-120"].capacity, got["K-120"].capacity_estimated) == (20, 20)
    assert got["K-050"].length_m == pytest.approx(50.0, abs=1e-6)
    assert (got["K-050"].capacity, got["K-050"].capacity_estimated) == (20, 20)
    assert got["L-050"].area_m2 == pytest.approx(2500.0, rel=1e-3) and got["L-050"].length_m is None
    assert (got["L-050"].capacity, got["L-050"].capacity_estimated) == (100, 100)
    # a capacity given by the planner is kept (even above the estimate); the estimate is recorded beside it
    assert (got["K-KEPT"].capacity, got["K-KEPT"].capacity_estimated) == (7, 20)
    assert (got["L-KEPT"].capacity, got["L-KEPT"].capacity_estimated) == (130, 125)  # ⌊3136 / 25⌋


def test_python_capacity_estimate():
    from gridmgr.layers.parking import estimate_capacity

    assert estimate_capacity("parallel", length_m=120.0) == 20
    assert estimate_capacity("perpendicular", length_m=50.0) == 20
    assert estimate_capacity("angled_30", length_m=50.0) == 10
    assert estimate_capacity("angled_60", length_m=28.9) == 10  # 28.9 / 2.89 is 9.999999999999998 in floats
    assert estimate_capacity("parallel", area_m2=2500.0) == 100
    # a 50 m square drawn in degrees measures 2499.992 m² on the ellipsoid: still 100 stalls; 2499.8 is 99
    assert estimate_capacity("perpendicular", area_m2=2499.992) == 100
    assert estimate_capacity("perpendicular", area_m2=2499.8) == 99
    assert estimate_capacity("parallel", length_m=59.99) == 9


def exported(conn, tmp_path, name, fmt="csv", **kw) -> pd.DataFrame:
    out = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.{fmt}"
    export_layer(conn, registry.get(name), fmt, out, **kw)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


@pytest.mark.parametrize(
    "today, expired",
    [
        (date(2026, 4, 1), set()),
        (date(2026, 5, 1), set()),  # valid through its last day
        (date(2026, 5, 2), {"AD-001"}),
        (date(2026, 6, 1), {"AD-001"}),
        (date(2028, 1, 1), {"AD-001", "AD-002"}),  # the unpermitted AD-003 (old date) never
    ],
)
def test_billboard_expired_follows_the_date(conn, small_grid, tmp_path, today, expired):
    load(conn, tmp_path, "billboards")
    df = exported(conn, tmp_path, "billboards", today=today)
    assert set(df.loc[df["expired"].str.lower() == "true", "ad_no"]) == expired
    assert (
        set(df.loc[df["expired"].str.lower() == "false", "ad_no"]) == {"AD-001", "AD-002", "AD-003", "AD-004"} - expired
    )


def test_billboard_expired_metric(conn, small_grid, tmp_path):
    load(conn, tmp_path, "billboards")
    metric = next(m for m in registry.get("billboards").metrics if m.name == "expired_billboards")
    sql = f"SELECT {metric.sql} FROM billboards f"
    assert conn.execute(text(sql), {"today": date(2026, 6, 1)}).scalar() == 1
    assert conn.execute(text(sql), {"today": date(2026, 4, 1)}).scalar() == 0


@pytest.mark.parametrize(
    "area, keys",
    [
        (("cell", SW), {"2026000101"}),
        (("cell", NE), {"2026000102"}),
        (("community", COMMUNITY), {"2026000101", "2026000102", "2026000103", "2026000104"}),
        (("street", "110101001"), {"2026000101", "2026000102", "2026000103", "2026000104"}),
        (("community", "110101001002"), set()),
        (None, {"2026000101", "2026000102", "2026000103", "2026000104", "2026000105"}),
    ],
)
def test_export_area_filters(conn, small_grid, tmp_path, area, keys):
    load(conn, tmp_path, "cases")
    df = exported(conn, tmp_path, "cases", area=area)
    assert set(df["case_no"]) == keys
    if area and keys:
        assert all(code.startswith(area[1]) for code in df["cell_code"])


def test_export_area_filter_on_lines_and_polygons(conn, small_grid, tmp_path):
    load(conn, tmp_path, "construction")
    df = exported(conn, tmp_path, "construction", area=("cell", SE))
    assert set(df["permit_no"]) == {"110101202600001"}  # by its primary cell


@pytest.mark.parametrize("area", [("cell", "1101"), ("community", "11010100100x"), ("province", "11")])
def test_export_area_filter_refuses_bad_codes(conn, small_grid, tmp_path, area):
    with pytest.raises(InputError):
        export_layer(conn, registry.get("cases"), "csv", tmp_path / "x.csv", area=area)


# ---- the CLI ------------------------------------------------------------------------------------------


def test_cli_import_export_list(cli, fresh_db, tmp_path):
    _, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
    src = write_input(tmp_path / "cases.csv", "csv", CASES)
    out = cli("layer", "import", "cases", src).output
    assert "5 rows, 5 imported" in out and "1 out of grid" in out
    # the same file again: recognised, nothing added
    assert "already imported" in cli("layer", "import", "cases", src).output
    dst = tmp_path / "out.gpkg"
    out = cli("layer", "export", "cases", "-f", "gpkg", "-o", dst, "--cell", NE).output
    assert "1 features written" in out
    assert list(gpd.read_file(dst)["case_no"]) == ["2026000102"]
    listing = cli("layer", "list").output
    for name in ("cases", "parking_zones", "parking_spaces", "construction", "billboards", "site_inspections"):
        assert name in listing
    assert "案件 cases: 5 " in listing
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM cases")).scalar() == 5
        assert c.execute(text("SELECT count(*) FROM import_log")).scalar() == 1
