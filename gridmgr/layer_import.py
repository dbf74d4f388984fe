"""Bulk import of a layer: validate, COPY into staging, one set-based INSERT with assignment.

All-or-nothing in the caller's transaction unless `skip_invalid`, which writes every rejected row
with its reasons to a rejects file. Re-importing adds nothing: rows whose natural key is already
stored are skipped, and a file whose content was imported before is recognised by its hash.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr import crs as crsmod
from gridmgr.assign import cell_join, shares_join
from gridmgr.errors import DatabaseUnavailable, InputError
from gridmgr.features import ST_NAMES
from gridmgr.regions import city_extent
from gridmgr.registry import Layer
from gridmgr.tabular import RawTable, read
from gridmgr.validate import Problems, parse_fields

MAX_LISTED = 50  # problems spelled out in one error; the rest are counted
NULL_MARK = "\x01"


@dataclass
class ImportResult:
    """What an import did."""

    layer: str
    rows: int
    imported: int
    existing: int                     # natural key already stored: skipped
    rejected: int
    out_of_grid: int
    ignored_columns: list[str] = field(default_factory=list)
    already_imported: datetime | None = None  # the same file's content was imported then

    def line(self) -> str:
        """The one-line summary."""
        if self.already_imported:
            return (f"{self.layer}: this file was already imported on {self.already_imported:%Y-%m-%d %H:%M}; "
                    "nothing changed")
        return (f"{self.layer}: {self.rows:,} rows, {self.imported:,} imported, {self.existing:,} already present, "
                f"{self.rejected:,} rejected, {self.out_of_grid:,} out of grid")


class ImportRejected(InputError):
    """An all-or-nothing import found bad rows; `problems` lists them (row, field, reason)."""

    def __init__(self, layer: str, lines: list[str], total_rows: int):
        self.problems = lines
        shown = lines[:MAX_LISTED]
        more = f"\n  … and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
        super().__init__(f"{layer}: {total_rows} row(s) refused, nothing stored "
                         f"(use --skip-invalid to import the valid rows):\n  " + "\n  ".join(shown) + more)


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the same content imported twice is recognised)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_file(conn: Connection, layer: Layer, path: str | Path, *, crs: str | None = None,
                mapping: dict[str, str] | None = None, skip_invalid: bool = False,
                rejects: str | Path | None = None, actor: str = "cli",
                progress: Callable[[str], None] = lambda msg: None) -> ImportResult:
    """Import one file into a layer inside the caller's transaction (see the module docstring)."""
    path = Path(path)
    digest = file_hash(path)
    seen = conn.execute(text("SELECT at FROM import_log WHERE layer = :l AND sha256 = :h ORDER BY at LIMIT 1"),
                        {"l": layer.name, "h": digest}).scalar()
    if seen is not None:
        return ImportResult(layer.name, 0, 0, 0, 0, 0, already_imported=seen)
    progress(f"reading {path.name}")
    raw = read(path, layer, mapping or {})
    problems = Problems()
    progress(f"validating {len(raw.frame):,} rows")
    typed = parse_fields(layer, raw.frame, problems, conn)
    geo = _geometry(layer, raw, crs, problems, city_extent(conn)) if layer.spatial else None
    n = len(typed)
    if problems and not skip_invalid:
        raise ImportRejected(layer.name, problems.lines(raw.records), len(problems))
    # rows already refused never reach the database (a NUL byte would break the COPY itself)
    keep = np.ones(n, dtype=bool)
    keep[list(problems.by_row)] = False
    progress("staging")
    _stage(conn, layer, typed, geo, keep)
    if layer.spatial and not layer.is_point:
        _invalid_geometries(conn, problems)
    if problems and not skip_invalid:
        raise ImportRejected(layer.name, problems.lines(raw.records), len(problems))
    bad = np.zeros(n, dtype=bool)
    bad[list(problems.by_row)] = True
    if problems:
        conn.execute(text("DELETE FROM stage WHERE row_no = ANY(:r)"), {"r": list(problems.by_row)})
        _write_rejects(rejects or path.with_suffix(".rejects.csv"), raw, problems)
    progress("inserting with cell assignment")
    imported, out_of_grid = _insert(conn, layer, from_lonlat=geo is not None and "lon" in geo)
    for statement in layer.after_import:
        conn.execute(text(statement))
    result = ImportResult(layer.name, n, imported, n - int(bad.sum()) - imported, int(bad.sum()), out_of_grid,
                          raw.ignored)
    conn.execute(text("""
        INSERT INTO import_log (layer, file_name, sha256, rows, imported, existing, rejected, actor)
        VALUES (:l, :f, :h, :r, :i, :e, :x, :a)
    """), {"l": layer.name, "f": path.name, "h": digest, "r": n, "i": imported, "e": result.existing,
           "x": result.rejected, "a": actor})
    return result


def _geometry(layer: Layer, raw: RawTable, crs: str | None, problems: Problems,
              extent: crsmod.Extent) -> dict[str, np.ndarray]:
    """WGS84 geometry per row: lon/lat arrays for points from tables, else WKB; bad rows recorded."""
    key = crsmod.parse_crs(crs or raw.file_crs or "wgs84")
    if raw.lon is not None:
        if "POINT" not in layer.geometry_types:
            raise InputError(f"{layer.name} takes {' or '.join(layer.geometry_types)}: give a wkt column, "
                             "not lon/lat")
        lon = pd.to_numeric(raw.lon.where(raw.lon != ""), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(raw.lat.where(raw.lat != ""), errors="coerce").to_numpy(float)
        missing = np.isnan(lon) | np.isnan(lat)
        problems.add(missing, "lon/lat", "is missing or not a number")
        x, y = crsmod.to_wgs84(np.where(missing, 0, lon), np.where(missing, 0, lat), key)
        for i, reason in crsmod.bad_points(x, y, extent):
            if not missing[i]:
                problems.add(np.arange(len(x)) == i, "lon/lat", reason)
        return {"lon": x, "lat": y}
    geoms = raw.geometry
    allowed = {ST_NAMES[t][3:].upper() for t in layer.geometry_types}
    wkb = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            problems.add(np.arange(len(geoms)) == i, "geometry", "is missing or not readable")
            continue
        if g.geom_type.startswith("Multi") and len(g.geoms) == 1 and g.geom_type.upper() not in allowed:
            g = g.geoms[0]  # a one-part multi geometry is the simple one (GIS files often write Multi*)
        if g.geom_type.upper() not in allowed:
            problems.add(np.arange(len(geoms)) == i, "geometry",
                         f"is a {g.geom_type}; {layer.name} takes {' or '.join(layer.geometry_types)}")
            continue
        g = crsmod.geometry_to_wgs84(g, key)
        xs, ys = shapely.get_coordinates(g).T
        bad = crsmod.bad_points(xs, ys, extent)
        if bad:
            problems.add(np.arange(len(geoms)) == i, "geometry", bad[0][1])
            continue
        wkb[i] = shapely.to_wkb(g, hex=True)
    return {"wkb": wkb}


def _stage(conn: Connection, layer: Layer, typed: pd.DataFrame, geo: dict | None, keep: np.ndarray) -> None:
    """COPY the typed rows into a temporary staging table `stage` (dropped at commit)."""
    cols = [c for c in layer.table.c if c.name not in ("id", "cell_id", "out_of_grid", "created_at", "geom")]
    by_column = {f.column: f.name for f in layer.fields}
    staged = [c for c in cols if c.name in by_column]
    defs = ["row_no int"] + [f"{c.name} {c.type.compile(dialect=conn.dialect)}" for c in staged]
    frame = pd.DataFrame({"row_no": np.arange(len(typed))})
    for c in staged:
        frame[c.name] = typed[by_column[c.name]].map(_pg_array) if c.name in _array_columns(layer) \
            else typed[by_column[c.name]]
    if geo is not None and "lon" in geo:
        defs += ["lon float8", "lat float8"]
        frame["lon"], frame["lat"] = geo["lon"], geo["lat"]
    elif geo is not None:
        defs.append("geom geometry(Geometry, 4326)")
        frame["geom"] = geo["wkb"]
    frame = frame[keep]
    conn.execute(text("DROP TABLE IF EXISTS stage"))
    conn.execute(text(f"CREATE TEMP TABLE stage ({', '.join(defs)}) ON COMMIT DROP"))
    buf = io.StringIO()
    # NULL is \x01, a character validation refuses in text, so no text value can be read as NULL
    frame.to_csv(buf, index=False, header=False, na_rep=NULL_MARK, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
    buf.seek(0)
    import psycopg2

    try:
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert(f"COPY stage ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv, NULL E'\\x01')",
                            buf)
    except psycopg2.OperationalError as exc:
        # the raw cursor bypasses SQLAlchemy: tell it the connection is gone so the rollback does not fail
        conn.invalidate(exc)
        reason = (str(exc).strip().splitlines() or ["connection lost"])[0]
        raise DatabaseUnavailable(f"the database connection was lost during the import ({reason}); "
                                  "nothing was stored") from exc


def _array_columns(layer: Layer) -> set[str]:
    return {f.column for f in layer.fields if f.type == "text[]"}


def _pg_array(items: list[str]) -> str:
    """A text[] literal for COPY."""
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def _invalid_geometries(conn: Connection, problems: Problems) -> None:
    """Invalid polygons and lines, with PostGIS's own reason."""
    for row_no, reason in conn.execute(text(
            "SELECT row_no, ST_IsValidReason(geom) FROM stage WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)")):
        problems.by_row.setdefault(row_no, []).append(("geometry", f"invalid geometry: {reason}"))


def _insert(conn: Connection, layer: Layer, from_lonlat: bool) -> tuple[int, int]:
    """One INSERT … SELECT: staged rows with their cell, skipping natural keys already stored."""
    t = layer.table
    by_column = {f.column for f in layer.fields}
    cols = [c.name for c in t.c if c.name in by_column and c.name not in layer.computed]
    computed = dict(layer.computed)
    target = cols + list(computed)
    select = [f"s.{c}" for c in cols] + [f"({expr})" for expr in computed.values()]
    if layer.spatial:
        geom = "ST_SetSRID(ST_MakePoint(lon, lat), 4326)" if from_lonlat else "geom"
        if t.c.geom.type.geometry_type == "MULTIPOLYGON":
            geom = f"ST_Multi({geom})"
        at = f"COALESCE(s.{layer.time_column}, now())" if layer.time_column in cols else "now()"
        source = f"(SELECT *, {geom} AS g FROM stage) s0"
        sql = f"""
            WITH ins AS (
              INSERT INTO {t.name} (geom, cell_id, {', '.join(target)})
              SELECT s.g, c.cell_id, {', '.join(select)}
              FROM (SELECT s0.* FROM {source}) s {cell_join('s.g', at)}
              ORDER BY s.row_no
              ON CONFLICT ({layer.natural_key}) DO NOTHING
              RETURNING id, geom, cell_id{', ' + layer.time_column if layer.time_column in cols else ''}
            )"""
        if layer.shares:
            ins_at = f"COALESCE(ins.{layer.time_column}, now())" if layer.time_column in cols else "now()"
            sql += f""", fc AS (
              INSERT INTO feature_cells (layer, feature_id, cell_id, share)
              SELECT '{layer.name}', ins.id, s.cell_id, s.share FROM ins {shares_join('ins.geom', ins_at)}
              RETURNING 1
            )"""
        if layer.on_insert:
            sql += f", hook AS ({layer.on_insert} RETURNING 1)"
        sql += " SELECT count(*), count(*) FILTER (WHERE cell_id IS NULL) FROM ins"
        imported, out = conn.execute(text(sql)).first()
        return imported, out
    sql = f"""
        WITH ins AS (
          INSERT INTO {t.name} ({', '.join(target)}) SELECT {', '.join(select)} FROM stage s ORDER BY s.row_no
          ON CONFLICT ({layer.natural_key}) DO NOTHING RETURNING 1
        ) SELECT count(*) FROM ins"""
    return conn.execute(text(sql)).scalar(), 0


def _write_rejects(path: Path, raw: RawTable, problems: Problems) -> None:
    """Every rejected row with its reasons and its original values."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        cols = list(raw.frame.columns)
        w.writerow(["record", "reasons", *cols])
        for i in sorted(problems.by_row):
            reasons = "; ".join(f"{f}: {m}" for f, m in problems.by_row[i])
            w.writerow([raw.records[i], reasons, *raw.frame.iloc[i].tolist()])
