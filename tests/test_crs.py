"""Tests of gridmgr.geo.crs: GCJ-02/BD-09 against published pairs, exact inverses, EPSG, validation."""

import numpy as np
import pytest
import shapely
from pyproj import Geod

from gridmgr.errors import CoordinateError, InputError
from gridmgr.geo.crs import (
    CHINA,
    Extent,
    bad_points,
    check_points,
    from_wgs84,
    geometry_from_wgs84,
    geometry_to_wgs84,
    parse_crs,
    to_wgs84,
)

GEOD = Geod(ellps="WGS84")

# (wgs lon, wgs lat, gcj lon, gcj lat)
GCJ02_PAIRS = [
    # googollee/eviltransform, go/transform_test.go and python/test.py (Shanghai, Shenzhen, Beijing)
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    # wandergis/coordtransform, test/app.js (also hutool CoordinateUtilTest.wgs84ToGcj02Test)
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]

# (wgs lon, wgs lat, bd lon, bd lat)
BD09_PAIRS = [
    # hutool, core/.../CoordinateUtilTest.java wgs84toBd09Test (built on wandergis/coordtransform)
    (116.404, 39.915, 116.41662724378733, 39.922699552216216),
    # hutool, CoordinateUtilTest.java wgs84toBd09Test2 (checked there against https://tool.lu/coordinate/)
    (122.99395597, 44.99804071, 123.00636516028885, 45.0063690918959),
]

# wandergis/coordtransform test/app.js: gcj02tobd09(116.404, 39.915)
GCJ02_TO_BD09 = ((116.404, 39.915), (116.41036949371029, 39.92133699351022))

# wandergis/coordtransform test/app.js: the published one-step (approximate) inverses of (116.404, 39.915)
APPROX_GCJ02_TO_WGS84 = (116.39775550083061, 39.91359571849836)
APPROX_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)


def distance_m(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def random_china_points(n=20000, seed=20240611):
    rng = np.random.default_rng(seed)
    return rng.uniform(73.5, 135.0, n), rng.uniform(18.0, 53.5, n)


@pytest.mark.parametrize("wlon, wlat, glon, glat", GCJ02_PAIRS)
def test_gcj02_forward_matches_published_pairs(wlon, wlat, glon, glat):
    lon, lat = from_wgs84(wlon, wlat, "gcj02")
    assert lon == pytest.approx(glon, abs=1e-5)
    assert lat == pytest.approx(glat, abs=1e-5)


@pytest.mark.parametrize("wlon, wlat, glon, glat", GCJ02_PAIRS)
def test_gcj02_inverse_lands_on_published_wgs84(wlon, wlat, glon, glat):
    lon, lat = to_wgs84(glon, glat, "gcj02")
    # eviltransform's own bar for its exact inverse is 0.5 m.
    assert distance_m(lon, lat, wlon, wlat) < 0.5


@pytest.mark.parametrize("wlon, wlat, blon, blat", BD09_PAIRS)
def test_bd09_forward_matches_published_pairs(wlon, wlat, blon, blat):
    lon, lat = from_wgs84(wlon, wlat, "bd09")
    assert lon == pytest.approx(blon, abs=1e-5)
    assert lat == pytest.approx(blat, abs=1e-5)
    back = to_wgs84(blon, blat, "bd09")
    assert distance_m(*back, wlon, wlat) < 0.5


def test_gcj02_to_bd09_published_pair():
    (glon, glat), (blon, blat) = GCJ02_TO_BD09
    lon, lat = from_wgs84(*to_wgs84(glon, glat, "gcj02"), "bd09")
    assert (lon, lat) == pytest.approx((blon, blat), abs=1e-5)


def test_exact_inverse_is_close_to_published_approximate_inverse():
    # The one-step inverses are off by centimetres to metres, never more.
    lon, lat = to_wgs84(116.404, 39.915, "gcj02")
    assert distance_m(lon, lat, *APPROX_GCJ02_TO_WGS84) < 5
    gcj = to_wgs84(116.404, 39.915, "bd09")
    gcj = from_wgs84(*gcj, "gcj02")
    assert distance_m(*gcj, *APPROX_BD09_TO_GCJ02) < 1


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_round_trip_under_a_metre(crs):
    lon, lat = random_china_points()
    back = to_wgs84(*from_wgs84(lon, lat, crs), crs)
    assert np.max(distance_m(lon, lat, *back)) < 1.0
    # The iteration stops at 1e-9 degrees of the forward: ~0.1 mm, far below a metre.
    forward = from_wgs84(*back, crs)
    converted = from_wgs84(lon, lat, crs)
    assert np.max(np.abs(forward[0] - converted[0])) < 1e-8
    assert np.max(np.abs(forward[1] - converted[1])) < 1e-8


def test_gcj02_offset_is_hundreds_of_metres_in_beijing():
    lon, lat = from_wgs84(116.40, 39.91, "gcj02")
    assert 300 < distance_m(116.40, 39.91, lon, lat) < 700


def test_gcj02_outside_china_is_identity():
    # London, Tokyo, Paris, New York. Bangkok would not do: the published box is rough and has it.
    lon = np.array([-0.1276, 139.6917, 2.3522, -74.006])
    lat = np.array([51.5072, 35.6895, 48.8566, 40.7128])
    for convert in (from_wgs84, to_wgs84):
        out = convert(lon, lat, "gcj02")
        np.testing.assert_array_equal(out[0], lon)
        np.testing.assert_array_equal(out[1], lat)


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "EPSG:4490", "epsg:4326"])
def test_identity_systems(crs):
    lon, lat = [116.4, 121.5], [39.9, 31.2]
    out = to_wgs84(lon, lat, crs)
    np.testing.assert_array_equal(out[0], lon)
    np.testing.assert_array_equal(out[1], lat)


def test_epsg_32650_round_trip():
    lon, lat = random_china_points(500)
    lon, lat = np.clip(lon, 111.0, 123.0), lat  # UTM zone 50N and its neighbourhood
    x, y = from_wgs84(lon, lat, "EPSG:32650")
    assert np.all(np.abs(x - 500000) < 700000)
    back = to_wgs84(x, y, "EPSG:32650")
    assert np.max(distance_m(lon, lat, *back)) < 1e-3


def test_epsg_3857_known_value():
    x, y = from_wgs84(180.0, 0.0, "EPSG:3857")
    assert float(x) == pytest.approx(20037508.342789244)
    assert float(y) == pytest.approx(0.0, abs=1e-6)


def test_scalars_lists_and_shapes():
    lon, lat = to_wgs84(116.4, 39.9, "gcj02")
    assert isinstance(lon, np.ndarray) and lon.shape == ()
    lon, lat = from_wgs84([[116.4, 116.5]], [[39.9, 39.8]], "bd09")
    assert lon.shape == (1, 2)
    lon, lat = to_wgs84([116.4, np.nan], [39.9, 39.9], "gcj02")
    assert np.isfinite(lon[0]) and np.isnan(lon[1])


@pytest.mark.parametrize(
    "name, key",
    [
        ("WGS84", "wgs84"),
        (" cgcs2000 ", "cgcs2000"),
        ("GCJ02", "gcj02"),
        ("Bd09", "bd09"),
        ("EPSG:3857", "EPSG:3857"),
        ("epsg:32650", "EPSG:32650"),
        ("EPSG:4490", "cgcs2000"),
        ("EPSG:4326", "wgs84"),
    ],
)
def test_parse_crs(name, key):
    assert parse_crs(name) == key


@pytest.mark.parametrize("name", ["mars", "EPSG:999999", "EPSG:", "4326", ""])
def test_unknown_crs_names_value_and_accepted_forms(name):
    with pytest.raises(CoordinateError) as info:
        parse_crs(name)
    assert repr(name) in str(info.value)
    assert "gcj02" in str(info.value) and "EPSG:<code>" in str(info.value)
    assert isinstance(info.value, InputError)


def test_geometry_round_trip():
    square = shapely.box(116.40, 39.90, 116.42, 39.92)
    gcj = geometry_from_wgs84(square, "gcj02")
    assert gcj.is_valid and not gcj.equals_exact(square, 1e-4)
    back = geometry_to_wgs84(gcj, "gcj02")
    assert back.equals_exact(square, 1e-8)
    multi = shapely.MultiPolygon([square, shapely.box(116.5, 39.9, 116.6, 40.0)])
    assert geometry_to_wgs84(geometry_from_wgs84(multi, "bd09"), "bd09").equals_exact(multi, 1e-8)


def test_extent_contains():
    inside = CHINA.contains([116.4, 39.9, 150.0, np.nan], [39.9, 116.4, 30.0, 30.0])
    assert inside.tolist() == [True, False, False, False]
    with pytest.raises(ValueError):
        Extent(10.0, 0.0, 5.0, 1.0)


def test_check_points_accepts_good_points():
    check_points([116.4, 121.5], [39.9, 31.2], CHINA, ["row 1", "row 2"])


def test_swapped_coordinates_are_named():
    with pytest.raises(CoordinateError) as info:
        check_points([116.4, 39.9], [39.9, 116.4], CHINA, ["row 16", "row 17"])
    message = str(info.value)
    assert message.startswith("row 17: ")
    assert "swapped" in message and "lat/lon were given as lon/lat" in message
    assert info.value.record == "row 17"


def test_out_of_extent_names_record_and_extent():
    with pytest.raises(CoordinateError) as info:
        check_points([116.4, 2.35], [39.9, 48.86], CHINA, ["row 2", "row 3"])
    message = str(info.value)
    assert message.startswith("row 3: ")
    assert "(2.35, 48.86)" in message and str(CHINA) in message
    assert "swapped" not in message


def test_non_finite_and_default_record():
    with pytest.raises(CoordinateError) as info:
        check_points([116.4, float("inf")], [39.9, 39.9], CHINA)
    assert str(info.value).startswith("point 1: ") and "finite" in str(info.value)


def test_bad_points_lists_every_problem():
    lon = [116.4, 39.9, np.nan, 2.35, 121.5]
    lat = [39.9, 116.4, 30.0, 48.86, 31.2]
    problems = bad_points(lon, lat, CHINA)
    assert [i for i, _ in problems] == [1, 2, 3]
    assert "swapped" in problems[0][1]
    assert "finite" in problems[1][1]
    assert "outside the extent" in problems[2][1]
