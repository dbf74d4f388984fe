"""Coordinate reference systems: convert input coordinates to WGS84 (lon/lat) and validate them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
import pyproj
import shapely
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from gridmgr.errors import CoordinateError

G = TypeVar("G", bound=BaseGeometry)

ArrayLike = float | list[float] | np.ndarray
Pair = tuple[np.ndarray, np.ndarray]

# Keys returned by parse_crs besides "EPSG:<code>".
NAMED_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
ACCEPTED_FORMS = "wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>"
# EPSG codes that mean one of our named systems: handled as identity, never through PROJ.
_EPSG_ALIASES = {4326: "wgs84", 4490: "cgcs2000"}
_EPSG_RE = re.compile(r"^epsg:\s*(\d+)$", re.IGNORECASE)

# GCJ-02 constants of the published algorithm: Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# BD-09 rotates/scales GCJ-02 with this constant (pi * 3000 / 180).
_BD_X_PI = math.pi * 3000.0 / 180.0
# Exact inverses stop when the forward of the result is this close to the input (degrees).
_INVERSE_TOL = 1e-9
_INVERSE_MAX_ITER = 30


def parse_crs(name: str) -> str:
    """Return the normalised key of a CRS name ("wgs84", "gcj02", "EPSG:3857"...)."""
    if not isinstance(name, str):
        raise CoordinateError(f"unknown CRS {name!r}; use {ACCEPTED_FORMS}")
    text = name.strip()
    if text.lower() in NAMED_CRS:
        return text.lower()
    match = _EPSG_RE.match(text)
    if match:
        code = int(match.group(1))
        if code in _EPSG_ALIASES:
            return _EPSG_ALIASES[code]
        try:
            pyproj.CRS.from_epsg(code)
        except CRSError:
            raise CoordinateError(f"unknown EPSG code {name!r}; use {ACCEPTED_FORMS}") from None
        return f"EPSG:{code}"
    raise CoordinateError(f"unknown CRS {name!r}; use {ACCEPTED_FORMS}")


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> Pair:
    """Convert coordinates given in `crs` to WGS84 lon/lat arrays."""
    key = parse_crs(crs)
    x, y = _as_arrays(lon, lat)
    if key in ("wgs84", "cgcs2000"):
        # CGCS2000 and WGS84 agree to well under a metre for mapping: no datum shift applied.
        return x.copy(), y.copy()
    if key == "gcj02":
        return _invert(_wgs84_to_gcj02, x, y)
    if key == "bd09":
        return _invert(_wgs84_to_bd09, x, y)
    return _arrays(*_transformer(key, "EPSG:4326").transform(x, y))


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> Pair:
    """Convert WGS84 lon/lat coordinates to `crs`."""
    key = parse_crs(crs)
    x, y = _as_arrays(lon, lat)
    if key in ("wgs84", "cgcs2000"):
        return x.copy(), y.copy()
    if key == "gcj02":
        return _arrays(*_wgs84_to_gcj02(x, y))
    if key == "bd09":
        return _arrays(*_wgs84_to_bd09(x, y))
    return _arrays(*_transformer("EPSG:4326", key).transform(x, y))


def geometry_to_wgs84(geom: G, crs: str) -> G:
    """Return a shapely geometry given in `crs` converted to WGS84."""
    return _transform_geometry(geom, crs, to_wgs84)


def geometry_from_wgs84(geom: G, crs: str) -> G:
    """Return a WGS84 shapely geometry converted to `crs`."""
    return _transform_geometry(geom, crs, from_wgs84)


@dataclass(frozen=True)
class Extent:
    """A lon/lat box in WGS84 degrees; points on its edge are inside."""

    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float

    def __post_init__(self) -> None:
        if not (self.lon_min < self.lon_max and self.lat_min < self.lat_max):
            raise ValueError(f"empty extent {self}")

    def contains(self, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """Return a boolean array: which points lie inside the extent (NaN is never inside)."""
        x, y = _as_arrays(lon, lat)
        return (x >= self.lon_min) & (x <= self.lon_max) & (y >= self.lat_min) & (y <= self.lat_max)

    def __str__(self) -> str:
        return f"lon {self.lon_min:.6g}..{self.lon_max:.6g}, lat {self.lat_min:.6g}..{self.lat_max:.6g}"


CHINA = Extent(73.0, 3.0, 136.0, 54.0)


def bad_points(lon: ArrayLike, lat: ArrayLike, extent: Extent) -> list[tuple[int, str]]:
    """Return (index, reason) for every point that is not finite or lies outside `extent`."""
    x, y = (a.ravel() for a in _as_arrays(lon, lat))
    finite = np.isfinite(x) & np.isfinite(y)
    inside = extent.contains(x, y)
    # Only an outside point is suspect: a lat/lon pair read as lon/lat lands inside when swapped.
    swapped = extent.contains(y, x)
    problems = []
    for i in np.flatnonzero(~(finite & inside)):
        if not finite[i]:
            reason = f"coordinate is not a finite number (lon={x[i]}, lat={y[i]})"
        elif swapped[i]:
            reason = (
                f"coordinates look swapped: ({x[i]}, {y[i]}) is outside {extent} but "
                f"({y[i]}, {x[i]}) is inside; lat/lon were given as lon/lat"
            )
        else:
            reason = f"point ({x[i]}, {y[i]}) is outside the extent {extent}"
        problems.append((int(i), reason))
    return problems


def check_points(lon: ArrayLike, lat: ArrayLike, extent: Extent, records: list[str] | None = None) -> None:
    """Raise CoordinateError for the first bad point, naming its record (e.g. "row 17")."""
    problems = bad_points(lon, lat, extent)
    if not problems:
        return
    index, reason = problems[0]
    if records is not None:
        if len(records) != np.size(lon):
            raise ValueError(f"{len(records)} records for {np.size(lon)} points")
        record = records[index]
    else:
        record = f"point {index}"
    raise CoordinateError(reason, record=record)


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> Pair:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return x, y


def _arrays(x: ArrayLike, y: ArrayLike) -> Pair:
    # numpy and pyproj hand back scalars for 0-d input; callers always get arrays.
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    # Building a Transformer costs milliseconds; since pyproj 3.1 one instance is thread-safe.
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _transform_geometry(geom: G, crs: str, convert: Callable[[ArrayLike, ArrayLike, str], Pair]) -> G:
    key = parse_crs(crs)

    def coords(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(convert(xy[:, 0], xy[:, 1], key))

    return shapely.transform(geom, coords)


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    # The published algorithm's rough box: GCJ-02 leaves points outside it unchanged.
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_dlat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> Pair:
    dlat = _gcj_dlat(lon - 105.0, lat - 35.0)
    dlon = _gcj_dlon(lon - 105.0, lat - 35.0)
    radlat = np.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    # The offsets are metres on the Krasovsky ellipsoid; turn them into degrees.
    dlat = dlat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = _out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def _gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> Pair:
    # Applied everywhere, as the published formula (and Baidu's own converter) does.
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> Pair:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _invert(forward: Callable[[np.ndarray, np.ndarray], Pair], lon: np.ndarray, lat: np.ndarray) -> Pair:
    """Solve forward(result) == (lon, lat) by fixed-point iteration, point by point."""
    # The published one-step inverses are off by metres; the offset varies slowly (its
    # derivative is ~1e-2), so subtracting the residual converges in a few steps.
    shape = lon.shape
    tx, ty = lon.ravel(), lat.ravel()
    x, y = tx.copy(), ty.copy()
    active = np.flatnonzero(np.isfinite(tx) & np.isfinite(ty))
    for _ in range(_INVERSE_MAX_ITER):
        if active.size == 0:
            break
        fx, fy = forward(x[active], y[active])
        dx, dy = fx - tx[active], fy - ty[active]
        pending = (np.abs(dx) > _INVERSE_TOL) | (np.abs(dy) > _INVERSE_TOL)
        active, dx, dy = active[pending], dx[pending], dy[pending]
        x[active] -= dx
        y[active] -= dy
    # Points still active sit on the edge of GCJ-02's China box, where the forward jumps;
    # they are far from any data gridmgr handles and keep the last estimate.
    return x.reshape(shape), y.reshape(shape)
