"""Reading a layer's input file into the text staging table `stage_raw`, or into text columns + geometry.

A UTF-8 CSV is COPYed by the server as it is (one text column per file column): no Python touches
its rows. Any other input (XLSX, GIS files, WKT, another CRS, a CSV the server's parser refuses) is
read by pandas/geopandas (`read`), then staged as text the same way. Validation runs on the staged
text either way (`gridmgr.io.validate`), so both paths accept and refuse exactly the same values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg2
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import DatabaseUnavailable, InputError
from gridmgr.io import sheets
from gridmgr.io.validate import Staged
from gridmgr.plugins.registry import Layer

COPY_CHUNK = 1 << 20  # bytes per read of a COPY's source: fewer round trips through psycopg2

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

    frame: pd.DataFrame  # every attribute column as str ("" for empty)
    records: np.ndarray  # "row 17" / "feature 3", for messages
    geometry: np.ndarray | None  # shapely geometries in the file's CRS (GIS files, WKT columns)
    lon: pd.Series | None  # or raw lon/lat text columns (CSV/XLSX points)
    lat: pd.Series | None
    file_crs: str | None  # "EPSG:n" declared by a GIS file
    ignored: list[str]  # columns that map to no field
    spreadsheet: bool = False  # a CSV or XLSX: its neutralised text cells are restored (gridmgr.io.sheets)


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


class RowRecords(Sequence[str]):
    """The record names of a table file's data rows, "row 2", "row 3", … (row 1 is the header), made when asked."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return f"row {i % self.n + 2}"


@dataclass
class ColumnPlan:
    """What each input column is: a field (after --map, aliases), lon, lat or WKT geometry, or ignored."""

    renamed: dict[str, str]
    lon: str | None
    lat: str | None
    wkt: str | None  # a WKT column that gives the geometry
    ignored: list[str] = field(default_factory=list)


def plan_columns(columns: list[str], layer: Layer, mapping: dict[str, str]) -> ColumnPlan:
    """Name every input column (columns without a geometry file: lon/lat or WKT are looked for)."""
    names = column_names(layer, mapping)
    lon = next((c for c in columns if c.lower() in LON_NAMES), None)
    lat = next((c for c in columns if c.lower() in LAT_NAMES), None)
    wkt = next((c for c in columns if c.lower() in WKT_NAMES), None)
    if wkt is not None and lon and lat and "POINT" in layer.geometry_types:
        wkt = None  # points from a table: lon/lat win
    if wkt is not None or not (lon and lat):
        lon = lat = None
    renamed: dict[str, str] = {}
    ignored: list[str] = []
    for c in columns:
        if c in (lon, lat, wkt):
            continue
        target = names.get(c) or names.get(c.lower())
        if target is None or target in renamed.values():
            ignored.append(c)
        else:
            renamed[c] = target
    return ColumnPlan(renamed, lon, lat, wkt, ignored)


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
    lon = lat = None
    if geometry is None:
        plan = plan_columns(list(df.columns), layer, mapping)
        if plan.wkt is not None:
            geometry = _parse_wkt(df.pop(plan.wkt).str.strip(), records)
        elif plan.lon:
            lon, lat = df.pop(plan.lon).str.strip(), df.pop(plan.lat).str.strip()
        elif layer.spatial:
            raise InputError(f"{path.name}: no geometry: give lon and lat columns (points) or a wkt column")
    else:
        plan = plan_columns(list(df.columns), layer, mapping)
        plan.ignored += [c for c in (plan.lon, plan.lat, plan.wkt) if c]  # a GIS file's geometry is its own
    renamed, ignored = plan.renamed, plan.ignored
    df = df[list(renamed)].rename(columns=renamed)
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()
    return RawTable(
        df.reset_index(drop=True), records, geometry, lon, lat, file_crs, ignored, spreadsheet=suffix in TABLE_SUFFIXES
    )


def _parse_wkt(values: pd.Series, records: np.ndarray) -> np.ndarray:
    """WKT text to shapely geometries; an unparsable value becomes None (reported by the caller)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        try:
            out[i] = shapely.from_wkt(v) if v else None
        except shapely.errors.GEOSException:
            out[i] = None
    return out


# ------------------------------------------------------------------------------------------ staging


def _create_stage(conn: Connection, columns: list[str], geom: bool = False) -> None:
    defs = ["row_no int GENERATED BY DEFAULT AS IDENTITY (START 0 MINVALUE 0)"]
    defs += [f"{c} text" for c in columns]
    if geom:
        defs.append("geom geometry(Geometry, 4326)")
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.stage_raw"))
    conn.execute(text(f"CREATE TEMP TABLE stage_raw ({', '.join(defs)}) ON COMMIT DROP"))


def _copy(conn: Connection, sql: str, source: IO[Any], name: str) -> int:
    """Run one COPY … FROM STDIN of `source`; returns the rows copied."""
    try:
        # psycopg2's own connection (untyped): its cursor is a context manager with copy_expert
        dbapi: Any = conn.connection.dbapi_connection
        with dbapi.cursor() as cur:
            cur.copy_expert(sql, source, size=COPY_CHUNK)
            return cur.rowcount
    except psycopg2.errors.QueryCanceled as exc:
        if "error in .read() call" not in str(exc):
            raise
        # reading the file failed part way: the server cancelled the COPY and the caller rolls back
        raise InputError(f"cannot read {name}: {str(exc).strip().splitlines()[0]}") from exc
    except psycopg2.OperationalError as exc:
        # the raw cursor bypasses SQLAlchemy: tell it the connection is gone so the rollback does not fail
        conn.invalidate(exc)
        reason = (str(exc).strip().splitlines() or ["connection lost"])[0]
        raise DatabaseUnavailable(
            f"the database connection was lost during the import ({reason}); nothing was stored"
        ) from exc


def stage_csv(conn: Connection, path: Path, layer: Layer, mapping: dict[str, str]) -> Staged | None:
    """COPY a CSV of points (lon/lat) or attributes into `stage_raw` as it is; None if it needs `read`.

    None for a file whose header is not plain UTF-8 with distinct names, that takes its geometry from
    WKT, or whose rows the server's CSV parser refuses (blank lines, ragged rows, NUL, bad UTF-8):
    pandas reads those as before, with its own row-by-row messages.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = [c.strip() for c in next(csv.reader(fh), [])]
    except (UnicodeDecodeError, csv.Error, OSError):
        return None
    if not header or len(set(header)) != len(header):
        return None
    plan = plan_columns(header, layer, mapping)
    if layer.spatial and (plan.wkt is not None or not plan.lon or "POINT" not in layer.geometry_types):
        return None
    if not layer.spatial:  # an attribute table's lon/lat or WKT columns are not its fields
        plan.ignored += [c for c in (plan.lon, plan.lat, plan.wkt) if c]
        plan.lon = plan.lat = None
    cols = [f"c{i}" for i in range(len(header))]
    by_name = dict(zip(header, cols))
    _create_stage(conn, cols)
    savepoint = conn.begin_nested()
    with open(path, "rb") as fh:
        try:
            # HEADER skips the first line, byte order mark included
            rows = _copy(
                conn,
                f"COPY stage_raw ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')",
                fh,
                path.name,
            )
        except psycopg2.DataError:
            savepoint.rollback()
            return None
    savepoint.commit()
    fields = {f: by_name[c] for c, f in plan.renamed.items()}
    return Staged(
        rows,
        fields,
        list(zip(cols, header)),
        RowRecords(rows),
        lon=by_name.get(plan.lon) if plan.lon is not None else None,
        lat=by_name.get(plan.lat) if plan.lat is not None else None,
        ignored=plan.ignored,
        spreadsheet=True,
    )


def stage_frame(
    conn: Connection, raw: RawTable, lonlat: tuple[np.ndarray, np.ndarray] | None = None, wkb: np.ndarray | None = None
) -> Staged:
    """COPY a table read by `read` into `stage_raw` as text; lon/lat as given (text), geometry as WKB."""
    frame = pd.DataFrame({"row_no": np.arange(len(raw.frame))})
    names = list(raw.frame.columns)
    for i, name in enumerate(names):
        # NUL cannot reach PostgreSQL; \x01 is refused by the same check (a control character)
        frame[f"c{i}"] = raw.frame[name].astype(str).str.replace("\x00", "\x01", regex=False).to_numpy()
    cols = [f"c{i}" for i in range(len(names))]
    headers = list(zip(cols, names))
    lon = lat = None
    if lonlat is not None:
        lon, lat = f"c{len(names)}", f"c{len(names) + 1}"
        frame[lon], frame[lat] = lonlat
        cols += [lon, lat]
        headers += [(lon, "lon"), (lat, "lat")]
    if wkb is not None:
        frame["geom"] = wkb
    _create_stage(conn, cols, geom=wkb is not None)
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)  # an empty field is NULL, read as empty like ""
    buf.seek(0)
    _copy(conn, f"COPY stage_raw ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)", buf, "the input")
    return Staged(
        len(frame),
        dict(zip(names, cols[: len(names)])),
        headers,
        raw.records,
        lon=lon,
        lat=lat,
        geom=wkb is not None,
        ignored=raw.ignored,
        spreadsheet=raw.spreadsheet,
    )


def write_template_csv(path: Path, layer: Layer, rows: list[dict], geometry: tuple[str, ...] = ()) -> Path:
    """Rows as an import file: the layer's template columns (its field names), then the geometry columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(
            fh, [f.name for f in layer.fields] + list(geometry), restval="", extrasaction="raise", lineterminator="\n"
        )
        out.writeheader()
        for row in rows:
            # the safe cell rule of every export: text a spreadsheet would run as a formula is neutralised
            out.writerow({k: sheets.csv_value(v) for k, v in row.items()})
    return path
