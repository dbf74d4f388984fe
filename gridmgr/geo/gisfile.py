"""Reading GIS files (Shapefile, GeoPackage, GeoJSON) into WGS84 shapely geometries, validated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridmgr.errors import InputError
from gridmgr.geo import crs as crsmod


@dataclass
class Feature:
    """One feature read from a file: its record name (for messages), properties and WGS84 geometry."""

    record: str
    props: dict
    geom: BaseGeometry


def read_features(path: str | Path, crs: str | None = None) -> list[Feature]:
    """Read every feature of a file, converted to WGS84 from `crs` (default: the file's own CRS)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(f"cannot read {path.name} as a GIS file: {exc}") from exc
    if crs is None:
        # a file without a declared CRS is taken as WGS84 (GeoJSON's own rule, RFC 7946)
        epsg = gdf.crs.to_epsg() if gdf.crs is not None else 4326
        if epsg is None:
            raise InputError(f"{path.name}: its CRS has no EPSG code; pass --crs")
        crs = f"EPSG:{epsg}"
    key = crsmod.parse_crs(crs)
    out = []
    for i, (geom, props) in enumerate(zip(gdf.geometry, gdf.drop(columns="geometry").to_dict("records"))):
        record = f"feature {i + 1}"
        if geom is None or geom.is_empty:
            raise InputError("has no geometry", record=record, field="geometry")
        props = {k: (None if _is_missing(v) else v) for k, v in props.items()}
        out.append(Feature(record, props, crsmod.geometry_to_wgs84(geom, key)))
    return out


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def check_polygon(feature: Feature, extent: crsmod.Extent = crsmod.CHINA) -> shapely.MultiPolygon:
    """The feature's geometry as a valid MultiPolygon inside the extent, or an InputError naming it."""
    geom = feature.geom
    if isinstance(geom, shapely.Polygon):  # same test as geom_type == "Polygon"
        geom = shapely.MultiPolygon([geom])
    if not isinstance(geom, shapely.MultiPolygon):
        raise InputError(f"is a {geom.geom_type}, a polygon is needed", record=feature.record, field="geometry")
    if not geom.is_valid:
        raise InputError(f"invalid geometry: {shapely.is_valid_reason(geom)}", record=feature.record, field="geometry")
    xs, ys = shapely.get_coordinates(geom).T
    problems = crsmod.bad_points(xs, ys, extent)
    if problems:
        raise InputError(problems[0][1], record=feature.record, field="geometry")
    return geom
