"""Export a layer to GeoJSON, GeoPackage, Shapefile, CSV or XLSX, in the layer's own import template."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError
from gridmgr.io.validate import LOCAL_TZ
from gridmgr.plugins.registry import Layer

FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx")
AREA_LEVELS = {"district": 6, "street": 9, "community": 12, "cell": 15}
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}


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
    conn: Connection, layer: Layer, area: tuple[str, str] | None = None, today: date | None = None
) -> pd.DataFrame:
    """The layer's features as a DataFrame of template columns (times in local time with offset)."""
    df = pd.read_sql_query(text(select_sql(layer, area)), conn, params={"today": today or date.today()})
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
    df = frame(conn, layer, area, today)
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
        out.unlink(missing_ok=True)
        gdf.to_file(out, driver=DRIVERS[fmt], engine="pyogrio")
        return len(gdf)
    if layer.is_point:
        df.insert(len(df.columns), "lon", [f"{g.x:.9f}" for g in geoms])
        df.insert(len(df.columns), "lat", [f"{g.y:.9f}" for g in geoms])
    else:
        df.insert(len(df.columns), "wkt", shapely.to_wkt(geoms, rounding_precision=-1) if len(df) else [])
    _write_table(df, fmt, out)
    return len(df)


def _write_table(df: pd.DataFrame, fmt: str, out: Path) -> None:
    if fmt == "csv":
        df.to_csv(out, index=False, encoding="utf-8-sig")
        return
    with pd.ExcelWriter(out, engine="openpyxl") as xw:
        df.to_excel(xw, index=False, sheet_name="features")
        ws = xw.sheets["features"]
        ws.freeze_panes = "A2"
        from openpyxl.styles import Font

        for cell in ws[1]:
            cell.font = Font(bold=True)
        for col in ws.columns:
            width = max(len(str(c.value or "")) for c in list(col)[:200])
            ws.column_dimensions[col[0].column_letter].width = min(max(10, width + 2), 60)
