"""Export a layer to GeoJSON, GeoPackage, Shapefile, CSV or XLSX, in the layer's own import template.

CSV and XLSX go through the one safe writer (`gridmgr.io.sheets`): formula-looking text is
neutralised, and a workbook holds numbers, dates, local date-times and booleans as their types. A
Shapefile is refused when a text value is longer than a dBase field holds, rather than cut.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError
from gridmgr.io import sheets
from gridmgr.io.validate import LOCAL_TZ
from gridmgr.plugins.registry import Layer

FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx")
AREA_LEVELS = {"district": 6, "street": 9, "community": 12, "cell": 15}
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
# a dBase text field holds 254 bytes; GDAL cuts longer UTF-8 text there, even inside a character
DBF_TEXT_BYTES = 254


def select_sql(layer: Layer, area: tuple[str, str] | None = None) -> str:
    """The SELECT that gives a layer's features in import-template form, with cell code and derived values."""
    cols, joins = [], []
    for f in layer.fields:
        if f.type == "ref" and f.column.endswith("_id"):
            assert f.ref is not None  # Field.__post_init__ requires ref exactly for type ref
            table, key, stored = f.ref
            joins.append(f"LEFT JOIN {table} r_{f.name} ON r_{f.name}.id = f.{stored}")
            cols.append(f"r_{f.name}.{key} AS {f.name}")
        else:
            cols.append(f"f.{f.column} AS {f.name}")
    cols += [f"({expr}) AS {name}" for name, expr in layer.derived.items()]
    where = ""
    if layer.spatial:
        cols += ["c.code AS cell_code", "f.out_of_grid", "ST_AsBinary(f.geom) AS geom_wkb"]
        joins.append("LEFT JOIN grid_cells c ON c.id = f.cell_id")
        if area:
            level, code = area
            if level not in AREA_LEVELS or len(code) != AREA_LEVELS[level] or not code.isdigit():
                raise InputError(f"--{level} takes a {AREA_LEVELS.get(level, '?')}-digit code, not {code!r}")
            # cell codes begin with their community, street and district codes
            where = f"WHERE c.code LIKE '{code}%'"
    return (
        f"SELECT {', '.join(cols)} FROM {layer.table.name} f {' '.join(joins)} {where} ORDER BY f.{layer.natural_key}"
    )


def frame(
    conn: Connection,
    layer: Layer,
    area: tuple[str, str] | None = None,
    today: date | None = None,
    *,
    typed: bool = False,
) -> pd.DataFrame:
    """The layer's features as a DataFrame of template columns (times in local time with offset).

    `typed`: dates, local times (without offset) and booleans as Python values, for a spreadsheet.
    """
    df = pd.read_sql_query(text(select_sql(layer, area)), conn, params={"today": today or date.today()})
    if typed:
        return _typed(df, layer)
    for f in layer.fields:
        if f.type == "datetime":
            df[f.name] = (
                pd.to_datetime(df[f.name], utc=True)
                .dt.tz_convert(LOCAL_TZ)
                .map(lambda v: v.isoformat() if pd.notna(v) else None)
            )
        elif f.type == "date":
            df[f.name] = df[f.name].map(lambda v: v.isoformat() if v is not None and pd.notna(v) else None)
        elif f.type == "text[]":
            df[f.name] = df[f.name].map(lambda v: ";".join(v) if v else "")
        elif f.type == "bool":
            df[f.name] = df[f.name].map(lambda v: None if v is None or pd.isna(v) else ("true" if v else "false"))
    for name in layer.derived:
        if df[name].dtype == bool or df[name].map(lambda v: isinstance(v, bool)).all():
            df[name] = df[name].map(lambda v: None if v is None else ("true" if v else "false"))
    return df


def _typed(df: pd.DataFrame, layer: Layer) -> pd.DataFrame:
    """Template columns as Python values a workbook stores as their types (None for missing)."""
    for f in layer.fields:
        if f.type == "datetime":
            local = pd.to_datetime(df[f.name], utc=True).dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
            df[f.name] = pd.Series(
                [None if pd.isna(v) else v.to_pydatetime() for v in local], index=df.index, dtype=object
            )
        elif f.type == "date":
            df[f.name] = df[f.name].map(lambda v: v if v is not None and pd.notna(v) else None).astype(object)
        elif f.type == "text[]":
            df[f.name] = df[f.name].map(lambda v: ";".join(v) if v else "")
        elif f.type == "bool":
            df[f.name] = df[f.name].map(lambda v: None if v is None or pd.isna(v) else bool(v)).astype(object)
    return df


def _refuse_long_text(gdf: gpd.GeoDataFrame, layer: Layer) -> None:
    """Refuse a Shapefile whose text would be cut: dBase holds 254 bytes a value and GDAL cuts silently."""
    for name in gdf.columns:
        if name == gdf.geometry.name or gdf[name].dtype.kind in "biufcmM":  # numbers and times are not cut
            continue
        for key, v in zip(gdf[layer.natural_key] if layer.natural_key in gdf else gdf.index, gdf[name]):
            if isinstance(v, str) and len(v.encode("utf-8")) > DBF_TEXT_BYTES:
                raise InputError(
                    f"{layer.name} {key}: {name} is {len(v.encode('utf-8'))} bytes of UTF-8 and a Shapefile "
                    f"text field holds {DBF_TEXT_BYTES}, so it would be cut: export as gpkg or geojson"
                )


def export_layer(
    conn: Connection,
    layer: Layer,
    fmt: str,
    out: str | Path,
    *,
    area: tuple[str, str] | None = None,
    today: date | None = None,
) -> int:
    """Write a layer's features to a file; returns how many."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    df = frame(conn, layer, area, today, typed=fmt in ("xlsx", "gpkg"))
    if not layer.spatial:
        if fmt not in ("csv", "xlsx"):
            raise InputError(f"{layer.name} has no geometry: export it as csv or xlsx")
        _write_table(df, fmt, out)
        return len(df)
    geoms = shapely.from_wkb(df.pop("geom_wkb").map(bytes).tolist()) if len(df) else []
    if fmt in DRIVERS:
        gdf = gpd.GeoDataFrame(df, geometry=list(geoms), crs="EPSG:4326")
        if fmt == "shp":
            kinds = set(gdf.geom_type)
            if len(kinds) > 1:
                raise InputError(
                    f"a Shapefile holds one geometry type, and {layer.name} has "
                    f"{', '.join(sorted(kinds))}: export as gpkg or geojson"
                )
            _refuse_long_text(gdf, layer)
        out.unlink(missing_ok=True)
        if fmt == "gpkg":
            _write_gpkg(df, geoms, layer, out)
        else:
            gdf.to_file(out, driver=DRIVERS[fmt], engine="pyogrio")
        return len(gdf)
    if layer.is_point:
        # numbers (nine decimals, ~0.1 mm), so that a negative one is never taken for a formula
        df.insert(len(df.columns), "lon", [round(g.x, 9) for g in geoms])
        df.insert(len(df.columns), "lat", [round(g.y, 9) for g in geoms])
    else:
        df.insert(len(df.columns), "wkt", shapely.to_wkt(geoms, rounding_precision=-1) if len(df) else [])
    _write_table(df, fmt, out)
    return len(df)


def _write_gpkg(df: pd.DataFrame, geoms: Any, layer: Layer, out: Path) -> None:
    """A GeoPackage with typed columns: DATE for dates, DATETIME (in UTC) for date-times."""
    import pyogrio.raw

    # geopandas hands pyogrio pandas columns, and pandas has no day-precision datetime64: dates would be
    # TEXT. So the arrays are built here, as pyogrio takes them.
    kinds = {f.name: f.type for f in layer.fields}
    data: list[np.ndarray] = []
    offsets: dict[str, np.ndarray] = {}
    for name in df.columns:
        values = df[name].tolist()
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in values])
        if kinds.get(name) == "date":
            arr: np.ndarray = np.array(
                [np.datetime64("NaT") if m else np.datetime64(v, "D") for v, m in zip(values, missing)],
                dtype="datetime64[D]",
            )
        elif kinds.get(name) == "datetime":
            # the local times of a typed frame, stored in UTC as the GeoPackage standard asks
            utc = pd.Series(pd.to_datetime(df[name]), index=df.index).dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC")
            arr = utc.dt.tz_localize(None).to_numpy(dtype="datetime64[ms]")
            offsets[name] = np.full(len(df), 100)  # GDAL's code for UTC
        elif all(m or isinstance(v, (bool, np.bool_)) for v, m in zip(values, missing)) and not missing.all():
            # yes/no as the import template's text: a nullable BOOLEAN reads back as 1.0/0.0/NaN
            arr = np.array([None if m else ("true" if v else "false") for v, m in zip(values, missing)], dtype=object)
        elif df[name].dtype.kind in "biuf":
            arr = df[name].to_numpy()
        else:
            arr = np.array([None if m else str(v) for v, m in zip(values, missing)], dtype=object)
        data.append(arr)
    types = {g.geom_type for g in geoms}
    pyogrio.raw.write(
        out,
        shapely.to_wkb(np.asarray(geoms, dtype=object)) if len(df) else np.array([], dtype=object),
        data,
        list(df.columns),
        driver="GPKG",
        geometry_type=types.pop() if len(types) == 1 else "Unknown",
        crs="EPSG:4326",
        gdal_tz_offsets=offsets,
    )


def _write_table(df: pd.DataFrame, fmt: str, out: Path) -> None:
    rows = df.astype(object).itertuples(index=False, name=None)
    if fmt == "csv":
        sheets.write_csv(out, list(df.columns), rows)
    else:
        sheets.write_xlsx(out, {"features": (list(df.columns), rows)})
