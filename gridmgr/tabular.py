"""Reading a layer's input file (CSV, XLSX, GeoJSON, GeoPackage, Shapefile) into text columns + geometry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmgr.errors import InputError
from gridmgr.registry import Layer

GIS_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp"}
TABLE_SUFFIXES = {".csv", ".xlsx"}
LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("wkt", "geometry", "geom", "几何")
# Shapefile (dBase) field names hold at most 10 characters
DBF_NAME_LENGTH = 10


@dataclass
class RawTable:
    """An input file as text columns, one geometry or lon/lat source, and each row's record name."""

    frame: pd.DataFrame           # every attribute column as str ("" for empty)
    records: np.ndarray           # "row 17" / "feature 3", for messages
    geometry: np.ndarray | None   # shapely geometries in the file's CRS (GIS files, WKT columns)
    lon: pd.Series | None         # or raw lon/lat text columns (CSV/XLSX points)
    lat: pd.Series | None
    file_crs: str | None          # "EPSG:n" declared by a GIS file
    ignored: list[str]            # columns that map to no field


def parse_mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--map SRC=DST` options as a dict; a malformed one is an error naming it."""
    out = {}
    for p in pairs:
        src, sep, dst = p.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise InputError(f"--map {p!r} is not SRC=DST")
        out[src.strip()] = dst.strip()
    return out


def column_names(layer: Layer, mapping: dict[str, str]) -> dict[str, str]:
    """Input column name → field name: --map first, then each field's name, aliases and dBase cut."""
    names: dict[str, str] = {}
    for f in layer.fields:
        for alias in (f.name, *f.aliases, f.name[:DBF_NAME_LENGTH]):
            names.setdefault(alias, f.name)
            names.setdefault(alias.lower(), f.name)
    names.update(mapping)
    return names


def read(path: Path, layer: Layer, mapping: dict[str, str]) -> RawTable:
    """Read an input file of a layer: attributes renamed to field names, geometry kept apart."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"no such file: {path}")
    file_crs = None
    geometry = None
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            records = np.array([f"row {i + 2}" for i in range(len(df))], dtype=object)
        elif suffix == ".xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
            records = np.array([f"row {i + 2}" for i in range(len(df))], dtype=object)
        elif suffix in GIS_SUFFIXES:
            gdf = gpd.read_file(path)
            if gdf.crs is not None:
                epsg = gdf.crs.to_epsg()
                file_crs = f"EPSG:{epsg}" if epsg else None
            geometry = np.asarray(gdf.geometry.values, dtype=object)
            df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
            df = df.astype(object).where(df.notna(), "").astype(str)
            records = np.array([f"feature {i + 1}" for i in range(len(df))], dtype=object)
        else:
            raise InputError(f"{path.name}: unknown format {suffix!r}; use .csv, .xlsx, .geojson, .gpkg or .shp")
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types for a broken file
        raise InputError(f"cannot read {path.name}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    names = column_names(layer, mapping)
    lon = lat = None
    if geometry is None:
        lon_col = next((c for c in df.columns if c.lower() in LON_NAMES), None)
        lat_col = next((c for c in df.columns if c.lower() in LAT_NAMES), None)
        wkt_col = next((c for c in df.columns if c.lower() in WKT_NAMES), None)
        if wkt_col is not None and not (lon_col and lat_col and "POINT" in layer.geometry_types):
            text = df.pop(wkt_col).str.strip()
            geometry = _parse_wkt(text, records)
        elif lon_col and lat_col:
            lon, lat = df.pop(lon_col).str.strip(), df.pop(lat_col).str.strip()
        elif layer.spatial:
            raise InputError(f"{path.name}: no geometry: give lon and lat columns (points) or a wkt column")
    renamed, ignored = {}, []
    for c in df.columns:
        target = names.get(c) or names.get(c.lower())
        if target is None or target in renamed.values():
            ignored.append(c)
        else:
            renamed[c] = target
    df = df[list(renamed)].rename(columns=renamed)
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()
    return RawTable(df.reset_index(drop=True), records, geometry, lon, lat, file_crs, ignored)


def _parse_wkt(values: pd.Series, records: np.ndarray) -> np.ndarray:
    """WKT text to shapely geometries; an unparsable value becomes None (reported by the caller)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        try:
            out[i] = shapely.from_wkt(v) if v else None
        except shapely.errors.GEOSException:
            out[i] = None
    return out
