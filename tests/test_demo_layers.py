"""Tests of gridmgr.layers.demo_city: the demo's layer files are deterministic, realistic, and import cleanly."""

import math
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text

from gridmgr.cases import categories
from gridmgr.demo import city as demo_city
from gridmgr.geo.crs import from_wgs84, geometry_from_wgs84
from gridmgr.geo.gisfile import read_features
from gridmgr.grid import regions
from gridmgr.io.importer import import_file
from gridmgr.layers.demo_city import COUNTS, HOT_SPOTS, KERB_M, LOT_STALL_M, USCC_CHARS, write_demo_layers
from gridmgr.layers.parking import KERB_PER_STALL, LOT_M2_PER_STALL
from gridmgr.paths import DATA
from gridmgr.plugins import registry

BOUNDARY = DATA / "boundaries" / "110101.geojson"
ANCHOR = date(2026, 11, 22)
METRIC = "EPSG:32650"
GEOMETRY = {
    "cases": ["lon", "lat"],
    "roads": ["wkt"],
    "parking_zones": ["wkt"],
    "parking_spaces": ["wkt"],
    "construction": ["wkt"],
    "site_inspections": [],
    "billboards": ["lon", "lat"],
}
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def district():
    return gpd.read_file(BOUNDARY).geometry[0]


@pytest.fixture(scope="module")
def city(district):
    """size → (streets, communities), as the demo loader makes them."""
    return {
        size: demo_city.synthetic_regions(
            district, "110101", n_streets=p.n_streets, n_communities=p.n_communities, seed=p.seed
        )
        for size, p in demo_city.SIZES.items()
    }


def write(folder, district, city, size, anchor=ANCHOR, seed=2004):
    streets, communities = city[size]
    return write_demo_layers(
        folder, district=district, streets=streets, communities=communities, anchor=anchor, size=size, seed=seed
    )


@pytest.fixture(scope="module")
def build(tmp_path_factory, district, city):
    """size → (files, frames of every file read as text), built once per module."""
    cache = {}

    def get(size):
        if size not in cache:
            files = write(tmp_path_factory.mktemp(size), district, city, size)
            cache[size] = files, {k: pd.read_csv(p, dtype=str, keep_default_na=False) for k, p in files.items()}
        return cache[size]

    return get


@pytest.fixture(params=["test", "demo"])
def layers(request, build):
    return request.param, *build(request.param)


@pytest.fixture
def demo(build):
    return build("demo")[1]


def metric(wkt_values):
    return [geometry_from_wgs84(shapely.from_wkt(w), METRIC) for w in wkt_values]


def test_same_seed_same_bytes(tmp_path, district, city):
    a, b = (write(tmp_path / x, district, city, "test") for x in "ab")
    assert all(a[k].read_bytes() == b[k].read_bytes() for k in a)
    other = write(tmp_path / "c", district, city, "test", seed=7)
    assert other["cases"].read_bytes() != a["cases"].read_bytes()


def test_files_follow_the_templates_in_import_order(layers):
    size, files, frames = layers
    # zones before their spaces, sites before their inspections
    assert list(files) == [
        "cases",
        "roads",
        "parking_zones",
        "parking_spaces",
        "construction",
        "site_inspections",
        "billboards",
    ]
    for name, df in frames.items():
        layer = registry.get(name)
        assert list(df.columns) == [f.name for f in layer.fields] + GEOMETRY[name], name
        for f in layer.fields:
            values = df[f.name]
            if f.required:
                assert (values != "").all(), (name, f.name)
            if f.type == "choice":
                assert set(values) - {""} <= set(f.choices), (name, f.name)
            if f.type == "bool":
                assert set(values) <= {"true", "false", ""}, (name, f.name)
            if f.type in ("date", "datetime"):
                assert pd.to_datetime(values[values != ""], format="ISO8601").notna().all(), (name, f.name)
            if f.max_length:
                assert values.str.len().max() <= f.max_length, (name, f.name)
        assert df[layer.natural_key].is_unique, name


def test_counts_per_size(layers):
    size, _, frames = layers
    n = COUNTS[size]
    assert [len(frames[k]) for k in ("cases", "parking_zones", "construction", "billboards")] == [
        n.cases,
        n.zones,
        n.sites,
        n.billboards,
    ]
    active = (frames["construction"].status == "active").sum()
    assert active >= 1 and 3 * active <= len(frames["site_inspections"]) <= 10 * active
    assert len(frames["parking_spaces"]) > 0


@pytest.mark.parametrize(
    "anchor, first, end",
    [
        (date(2026, 11, 22), "2025-11-01", "2026-11-01"),
        (date(2026, 1, 1), "2025-01-01", "2026-01-01"),
        (date(2024, 3, 31), "2023-03-01", "2024-03-01"),
    ],
)
def test_cases_fill_the_twelve_full_months_before_the_anchor_month(tmp_path, district, city, anchor, first, end):
    cases = pd.read_csv(write(tmp_path, district, city, "test", anchor=anchor)["cases"], dtype=str)
    at = pd.to_datetime(cases.reported_at, format="ISO8601")
    assert at.min() >= pd.Timestamp(first) and at.max() < pd.Timestamp(end)
    assert at.dt.to_period("M").nunique() == 12
    assert not cases.reported_at.str.contains(r"[+Z]").any()  # naive: local time, as the importer reads it


def test_case_rhythm(demo):
    at = pd.to_datetime(demo["cases"].reported_at)
    per_day = at.dt.date.value_counts()
    weekend = pd.to_datetime(per_day.index).day_of_week >= 5
    assert per_day[~weekend].mean() > 1.2 * per_day[weekend].mean()
    assert at.dt.hour.between(7, 20).mean() > 0.85
    per_month = at.dt.to_period("M").value_counts()
    assert 3_500 < per_month.min() and per_month.max() < 5_000  # ≈4,200 a month, a mild swing


def test_category_mix_follows_zhanjiang(demo):
    category = demo["cases"].category
    assert set(category) <= {c["code"] for c in categories.read()}
    event = ~category.str.startswith("C")
    assert 0.85 <= event.mean() <= 0.90
    events = category[event].value_counts(normalize=True)
    assert events.index[0] == "0102" and 0.30 <= events["0102"] <= 0.42
    assert all(0.08 <= events[c] <= 0.15 for c in ("0103", "0104"))
    assert all(events[c] >= 0.03 for c in ("0108", "0505", "0504", "0201"))
    components = category[~event].value_counts(normalize=True)
    assert components.index[0] == "C0104" and 0.15 <= components["C0104"] <= 0.27
    assert {"C0110", "C0401", "C0101", "C0102"} <= set(components.index)


def test_sources_urgency_and_numbers(demo):
    cases = demo["cases"]
    source = cases.source.value_counts(normalize=True)
    assert 0.87 <= source["supervisor"] <= 0.93
    assert {"public", "hotline_12319", "hotline_12345", "video", "leader"} <= set(source.index)
    assert 0.03 <= (cases.urgency == "urgent").mean() <= 0.07
    assert cases.case_no.str.fullmatch(r"\d{11}").all()
    assert (cases.case_no.str[:4] == cases.reported_at.str[:4]).all()
    # numbered by report time, from 0000001 in each year
    assert cases.reported_at.is_monotonic_increasing and cases.case_no.is_monotonic_increasing
    assert set(cases.groupby(cases.case_no.str[:4]).case_no.min().str[4:]) == {"0000001"}
    assert cases.description.str.len().between(6, 40).all()
    assert cases.address.str.match(r"模拟街道\d{2} \S+ \d+号$").all()


def test_everything_lies_inside_the_district(layers, district):
    _, _, frames = layers
    for name in ("cases", "billboards"):
        lon, lat = frames[name].lon.astype(float), frames[name].lat.astype(float)
        assert shapely.contains_xy(district, lon, lat).all(), name
    for name in ("parking_zones", "parking_spaces", "construction"):
        assert all(district.contains(shapely.from_wkt(w)) for w in frames[name].wkt), name


def test_hot_spots_are_concentrated_and_biased(demo, district):
    cases = demo["cases"]
    x, y = from_wgs84(cases.lon.astype(float), cases.lat.astype(float), METRIC)
    bins = pd.Series(list(zip(x // 100, y // 100))).value_counts()
    n_bins = geometry_from_wgs84(district, METRIC).area / 100**2
    top = bins.iloc[: math.ceil(0.01 * n_bins)].sum() / len(cases)
    assert top > 0.10  # uniform cases would put ~1 % there
    everywhere = cases.category.value_counts(normalize=True)
    for h in HOT_SPOTS:
        hx, hy = from_wgs84(h.lon, h.lat, METRIC)
        near = np.hypot(x - hx, y - hy) < 300
        assert near.mean() > 5 * math.pi * 300**2 / (n_bins * 100**2), h.name
        top_bias = max(h.bias, key=lambda c: h.bias[c] / everywhere[c])  # the most over-represented
        assert cases.category[near].value_counts(normalize=True)[top_bias] > 1.5 * everywhere[top_bias], h.name
        assert cases.description[near].str.startswith(h.name).mean() > 0.5, h.name


def test_zones_and_sites_do_not_overlap(layers):
    _, _, frames = layers
    zones, sites = metric(frames["parking_zones"].wkt), metric(frames["construction"].wkt)
    for geoms, gap in ((zones, 15), (sites, 30), (zones + sites, 15)):
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="dwithin", distance=gap - 0.1)
        assert (left == right).all()  # each is only near itself
    assert all(shapely.is_valid(g) for g in zones + sites)
    assert all(3_000 * 0.99 <= g.area <= 30_000 * 1.01 for g in sites)
    for g in zones:
        if g.geom_type == "LineString":
            assert 40 <= g.length <= 200
        else:
            assert 1_200 * 0.99 <= g.area <= 4_800 * 1.01


def test_spaces_fill_the_painted_zones(layers):
    _, _, frames = layers
    assert {k: KERB_PER_STALL[k] for k in KERB_M} == KERB_M and LOT_STALL_M**2 == LOT_M2_PER_STALL
    zones, spaces = frames["parking_zones"], frames["parking_spaces"]
    painted = zones[zones.status == "painted"]
    assert set(spaces.zone_no) == set(painted.zone_no)
    assert spaces.space_no.str.fullmatch(r"PZ-\d{4}-\d{3}").all()
    per_zone = spaces.zone_no.value_counts()
    for z in painted.itertuples():
        g = shapely.from_wkt(z.wkt)
        # the estimate the importer makes: geodesic length or area (docs/domain.md §7)
        estimate = (
            math.floor(GEOD.geometry_length(g) / KERB_PER_STALL[z.parking_angle])
            if g.geom_type == "LineString"
            else math.floor(abs(GEOD.geometry_area_perimeter(g)[0]) / LOT_M2_PER_STALL)
        )
        assert per_zone[z.zone_no] == (int(z.capacity) if z.capacity else estimate), z.zone_no
        if z.capacity:
            assert z.capacity_reason and int(z.capacity) < estimate
    assert (zones.valid_from[zones.status.isin(["approved", "painted"])] < ANCHOR.isoformat()).all()


def test_parking_mix(demo):
    zones, spaces = demo["parking_zones"], demo["parking_spaces"]
    assert zones.status.isin(["painted", "approved"]).mean() > 0.7
    assert {"draft", "submitted"} <= set(zones.status)
    assert zones.wkt.str.startswith("POLYGON").sum() >= 5
    assert (zones.parking_angle == "parallel").mean() > 0.5 and {"perpendicular", "angled_45", "angled_60"} <= set(
        zones.parking_angle
    )
    assert 0 < (zones.capacity != "").sum() < 0.2 * len(zones)
    assert {"disabled", "ev_charging"} <= set(spaces.type)
    assert zones.name.is_unique and zones.name.str.match(r"模拟街道\d{2} ").all()


def test_sites_and_inspections(layers):
    _, _, frames = layers
    sites, inspections = frames["construction"], frames["site_inspections"]
    items = ["hoarding", "covering", "washing", "hardening", "wet_work", "closed_transport"]
    assert sites.permit_no.str.fullmatch(r"110101-\d{4}-\d{4}").all()
    assert sites.manager_phone.str.fullmatch(r"1390000\d{4}").all()
    today = ANCHOR.isoformat()
    for s in sites.itertuples():
        if s.status == "planned":
            assert s.start_date > today
        elif s.status == "finished":
            assert s.planned_end < today
        else:
            assert s.start_date <= today <= s.planned_end
    active = set(sites.permit_no[sites.status == "active"])
    per_site = inspections.permit_no.value_counts()
    assert set(per_site.index) == active and per_site.between(3, 10).all()
    at = inspections.inspected_at
    assert (at >= (ANCHOR - timedelta(days=183)).isoformat()).all() and (at < today).all()
    assert list(inspections.inspection_no) == [f"INS-{i:06d}" for i in range(1, len(inspections) + 1)]
    assert at.is_monotonic_increasing
    assert (inspections[items] == "false").sum(axis=1).max() <= 1
    starts = sites.set_index("permit_no").start_date
    assert (at.str[:10] >= inspections.permit_no.map(starts)).all()  # never before the site opened
    latest = inspections.sort_values("inspected_at").groupby("permit_no").last()
    shown = sites.set_index("permit_no").loc[list(active), items]
    assert (latest.loc[list(active), items] == shown).all().all()  # a site shows its latest inspection


def test_some_inspections_fail(demo):
    failed = (
        demo["site_inspections"][["hoarding", "covering", "washing", "hardening", "wet_work", "closed_transport"]]
        == "false"
    ).any(axis=1)
    assert 0.08 <= failed.mean() <= 0.25


def test_billboards(demo):
    b = demo["billboards"]
    status = b.status.value_counts(normalize=True)
    assert 0.06 <= status["unpermitted"] <= 0.10 and 0.02 <= status["removed"] <= 0.04
    permitted = b[b.status == "permitted"]
    assert (permitted.permit_no != "").all() and (b.permit_no[b.status == "unpermitted"] == "").all()
    assert 0.10 <= (permitted.valid_to < ANCHOR.isoformat()).mean() <= 0.14
    years = (pd.to_datetime(permitted.valid_to) - pd.to_datetime(permitted.valid_from)).dt.days / 365
    assert (years[permitted.type != "led_screen"] <= 3).all() and (years <= 5).all()
    overdue = pd.to_datetime(permitted.last_inspection) < pd.Timestamp(ANCHOR - timedelta(days=365))
    assert 0.08 <= overdue.mean() <= 0.25
    assert len(set(b.type)) >= 6 and b.owner.nunique() >= 20
    assert b.permit_no[b.permit_no != ""].is_unique
    for code in set(b.owner_credit_code):  # GB 32100-2015: 17 characters and a check character
        total = sum(USCC_CHARS.index(c) * 3**i % 31 for i, c in enumerate(code[:17]))
        assert len(code) == 18 and code[17] == USCC_CHARS[(31 - total % 31) % 31], code


# parse_field (gridmgr/io/validate.py) gives an int column with some empty cells as floats under pandas 3, so COPY
def test_files_import_through_the_normal_path(conn, build):
    """Every file goes in through import_file, in the returned order, with nothing refused."""
    district = read_features(BOUNDARY, "wgs84")
    regions.store(conn, regions.prepare(district, "district"), "district")  # the extent points are checked against
    # the roads name the roster's sanitation office as their cleaning unit
    conn.execute(text("INSERT INTO units (code, name, kind) VALUES ('HW01', '东城区环卫所', 'sanitation')"))
    files, frames = build("test")
    for name, path in files.items():
        result = import_file(conn, registry.get(name), path)
        assert (result.rows, result.imported, result.rejected) == (len(frames[name]), len(frames[name]), 0), name
    # the stored capacity (estimated by the importer or given) is the number of spaces painted
    mismatched = (
        conn.execute(
            text("""
        SELECT z.zone_no FROM parking_zones z LEFT JOIN parking_spaces s ON s.zone_id = z.id
        WHERE z.status = 'painted' GROUP BY z.zone_no, z.capacity HAVING count(s.id) <> z.capacity
    """)
        )
        .scalars()
        .all()
    )
    assert mismatched == []
