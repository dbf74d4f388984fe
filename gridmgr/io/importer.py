"""Bulk import of a layer: COPY into staging, validation in SQL, one set-based INSERT with assignment.

The input is staged as text (`gridmgr.io.tabular`: the server COPYs a UTF-8 CSV as it is; other files go
through pandas), checked and typed in SQL (`gridmgr.io.validate`: every problem named by row and field),
then inserted by one INSERT … SELECT that assigns each feature its cell (`gridmgr.grid.assign`) and writes
what the layer adds in the same statement (a case's first audit event). All-or-nothing in the caller's
transaction unless `skip_invalid`, which writes every rejected row with its reasons to a rejects file.
Re-importing adds nothing: rows whose natural key is already stored are skipped, and a file whose
content was imported before is recognised by its hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import shapely
from psycopg2.extensions import TRANSACTION_STATUS_INTRANS
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from gridmgr.errors import InputError
from gridmgr.geo import crs as crsmod
from gridmgr.grid.assign import (
    BULK_MIN_ROWS,
    cell_join,
    point_cell_join,
    prepare_point_tiles,
    shares_join,
)
from gridmgr.grid.regions import city_extent
from gridmgr.io import sheets, validate
from gridmgr.io.tabular import RawTable, read, stage_csv, stage_frame
from gridmgr.io.validate import Problems, Staged
from gridmgr.plugins.features import ST_NAMES
from gridmgr.plugins.registry import Layer

MAX_LISTED = 50  # problems spelled out in one error; the rest are counted
WORK_MEM = "256MB"
# A load at least DEFER_RATIO times the rows a table holds (and at least DEFER_MIN_ROWS) drops the
# table's secondary indexes and builds them again after the INSERT, in the same transaction: one sorted
# build per index instead of one insertion per row into each (−38 % of the INSERT at 10⁶ rows). The
# unique and primary keys (ON CONFLICT, foreign keys) are kept, and so are partial and expression
# indexes (built again from pg_get_indexdef they would be stored with a differently written predicate).
# Dropping takes an ACCESS EXCLUSIVE lock, held to the commit: readers of the table wait for the
# import, so a table in use (lock not granted within LOCK_WAIT) is loaded with its indexes in place
# instead. A rollback or a killed import restores the indexes. Only an import run as the tables' owner
# does this (the app's login role may run no DDL): a bureau's first big load can, with GRIDMGR_DATABASE_URL
# set to the owner's URL for that one command.
DEFER_MIN_ROWS = 100_000
DEFER_RATIO = 2
LOCK_WAIT = "2s"
IDENTITY_CRS = ("wgs84", "cgcs2000")  # coordinates taken as they are (gridmgr.geo.crs.to_wgs84)


@dataclass
class ImportResult:
    """What an import did."""

    layer: str
    rows: int
    imported: int
    existing: int  # natural key already stored: skipped
    rejected: int
    out_of_grid: int
    ignored_columns: list[str] = field(default_factory=list)
    already_imported: datetime | None = None  # the same file's content was imported then

    def line(self) -> str:
        """The one-line summary."""
        if self.already_imported:
            return (
                f"{self.layer}: this file was already imported on {self.already_imported:%Y-%m-%d %H:%M}; "
                "nothing changed"
            )
        return (
            f"{self.layer}: {self.rows:,} rows, {self.imported:,} imported, {self.existing:,} already present, "
            f"{self.rejected:,} rejected, {self.out_of_grid:,} out of grid"
        )


class ImportRejected(InputError):
    """An all-or-nothing import found bad rows; `problems` lists them (row, field, reason)."""

    def __init__(self, layer: str, lines: list[str], total_rows: int):
        self.problems = lines
        shown = lines[:MAX_LISTED]
        more = f"\n  … and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
        super().__init__(
            f"{layer}: {total_rows} row(s) refused, nothing stored "
            f"(use --skip-invalid to import the valid rows):\n  " + "\n  ".join(shown) + more
        )


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the same content imported twice is recognised)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_file(
    conn: Connection,
    layer: Layer,
    path: str | Path,
    *,
    crs: str | None = None,
    mapping: dict[str, str] | None = None,
    skip_invalid: bool = False,
    rejects: str | Path | None = None,
    actor: str = "cli",
    progress: Callable[[str], None] = lambda msg: None,
) -> ImportResult:
    """Import one file into a layer inside the caller's transaction (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    digest = file_hash(path)
    seen = conn.execute(
        text("SELECT at FROM import_log WHERE layer = :l AND sha256 = :h ORDER BY at LIMIT 1"),
        {"l": layer.name, "h": digest},
    ).scalar()
    if seen is not None:
        return ImportResult(layer.name, 0, 0, 0, 0, 0, already_imported=seen)
    # the import's hash tables (distinct values, natural keys, the inserted rows it hands on to the
    # audit events) fit in memory at 10⁶ rows instead of spilling to disk; the caller's value comes back
    # after (after an error too, unless the transaction is aborted: its rollback restores it)
    work_mem = conn.execute(text("SELECT current_setting('work_mem')")).scalar()
    conn.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": WORK_MEM})
    try:
        return _import(conn, layer, path, digest, crs, mapping or {}, skip_invalid, rejects, actor, progress)
    finally:
        if (
            not conn.invalidated
            # psycopg2's own connection (untyped), with its .info
            and cast(Any, conn.connection.dbapi_connection).info.transaction_status == TRANSACTION_STATUS_INTRANS
        ):
            conn.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})


def _import(
    conn: Connection,
    layer: Layer,
    path: Path,
    digest: str,
    crs: str | None,
    mapping: dict[str, str],
    skip_invalid: bool,
    rejects: str | Path | None,
    actor: str,
    progress: Callable[[str], None],
) -> ImportResult:
    extent = city_extent(conn) if layer.spatial else None
    problems = Problems()
    progress(f"staging {path.name}")
    staged = _stage(conn, layer, path, crs, mapping, problems, extent)
    n = staged.rows
    progress(f"validating {n:,} rows")
    validate.check(conn, layer, staged, problems, extent)
    if staged.geom:
        _invalid_geometries(conn, problems)
    if problems and not skip_invalid:
        raise ImportRejected(layer.name, problems.lines(staged.records), len(problems))
    if problems:
        _write_rejects(conn, rejects or path.with_suffix(".rejects.csv"), staged, problems)
        conn.execute(text("DELETE FROM stage WHERE row_no = ANY(:r)"), {"r": list(problems.by_row)})
    progress("inserting with cell assignment")
    deferred = _defer_indexes(conn, layer, n - len(problems))
    imported, out_of_grid = _insert(conn, layer, staged, n - len(problems))
    if deferred:
        progress(f"building {len(deferred)} indexes")
        for definition in deferred:
            conn.execute(text(definition))
    for statement in layer.after_import:
        conn.execute(text(statement))
    result = ImportResult(
        layer.name, n, imported, n - len(problems) - imported, len(problems), out_of_grid, staged.ignored
    )
    conn.execute(
        text("""
        INSERT INTO import_log (layer, file_name, sha256, rows, imported, existing, rejected, actor)
        VALUES (:l, :f, :h, :r, :i, :e, :x, :a)
    """),
        {
            "l": layer.name,
            "f": path.name,
            "h": digest,
            "r": n,
            "i": imported,
            "e": result.existing,
            "x": result.rejected,
            "a": actor,
        },
    )
    return result


def _stage(
    conn: Connection,
    layer: Layer,
    path: Path,
    crs: str | None,
    mapping: dict[str, str],
    problems: Problems,
    extent: crsmod.Extent | None,
) -> Staged:
    """The input in `stage_raw`: a plain CSV COPYed by the server, anything else read here first."""
    key = crsmod.parse_crs(crs) if crs else None
    if path.suffix.lower() == ".csv" and key in (None, *IDENTITY_CRS):
        staged = stage_csv(conn, path, layer, mapping)
        if staged is not None:
            return staged
    raw = read(path, layer, mapping)
    if not layer.spatial:
        return stage_frame(conn, raw)
    key = crsmod.parse_crs(crs or raw.file_crs or "wgs84")
    if raw.lon is not None:
        if "POINT" not in layer.geometry_types:
            raise InputError(f"{layer.name} takes {' or '.join(layer.geometry_types)}: give a wkt column, not lon/lat")
        return stage_frame(conn, raw, lonlat=_lonlat(raw, key))
    assert extent is not None  # a spatial layer: _import passes the city extent
    return stage_frame(conn, raw, wkb=_geometry(layer, raw, key, problems, extent))


def _lonlat(raw: RawTable, key: str) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat text in WGS84: as given in WGS84/CGCS2000, else converted where both are numbers."""
    assert raw.lon is not None and raw.lat is not None  # the caller checked raw.lon; read sets both together
    lon, lat = raw.lon.to_numpy(dtype=object), raw.lat.to_numpy(dtype=object)
    if key in IDENTITY_CRS:
        return lon, lat
    x = pd.to_numeric(raw.lon.where(raw.lon != ""), errors="coerce").to_numpy(float)
    y = pd.to_numeric(raw.lat.where(raw.lat != ""), errors="coerce").to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(y)
    cx, cy = crsmod.to_wgs84(np.where(ok, x, 0), np.where(ok, y, 0), key)
    # repr: the shortest text that reads back as the same double; the rest is checked (and refused) as given
    lon = np.where(ok, [repr(float(v)) for v in cx], lon)
    lat = np.where(ok, [repr(float(v)) for v in cy], lat)
    return lon, lat


def _geometry(layer: Layer, raw: RawTable, key: str, problems: Problems, extent: crsmod.Extent) -> np.ndarray:
    """WGS84 WKB (hex) per row of a GIS file or WKT column; None and a recorded problem where bad."""
    geoms = raw.geometry
    assert geoms is not None  # read gives a spatial layer's table lon/lat (handled before) or a geometry
    allowed = {ST_NAMES[t][3:].upper() for t in layer.geometry_types}
    wkb = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            problems.add_row(i, "geometry", "is missing or not readable")
            continue
        if g.geom_type.startswith("Multi") and len(g.geoms) == 1 and g.geom_type.upper() not in allowed:
            g = g.geoms[0]  # a one-part multi geometry is the simple one (GIS files often write Multi*)
        if g.geom_type.upper() not in allowed:
            problems.add_row(
                i, "geometry", f"is a {g.geom_type}; {layer.name} takes {' or '.join(layer.geometry_types)}"
            )
            continue
        g = crsmod.geometry_to_wgs84(g, key)
        xs, ys = shapely.get_coordinates(g).T
        bad = crsmod.bad_points(xs, ys, extent)
        if bad:
            problems.add_row(i, "geometry", bad[0][1])
            continue
        wkb[i] = shapely.to_wkb(g, hex=True)
    return wkb


def _invalid_geometries(conn: Connection, problems: Problems) -> None:
    """Invalid polygons and lines, with PostGIS's own reason."""
    for row_no, reason in conn.execute(
        text("SELECT row_no, ST_IsValidReason(geom) FROM stage WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)")
    ):
        problems.add_row(row_no, "geometry", f"invalid geometry: {reason}")


def _defer_indexes(conn: Connection, layer: Layer, rows: int) -> list[str]:
    """Drop the secondary indexes of a table about to take a much larger load; their definitions to rebuild."""
    t = layer.table.name
    cap = rows // DEFER_RATIO
    # only the tables' owner may drop and build indexes: the app's role loads with them in place
    owner = conn.execute(
        text("SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": t}
    )
    if (
        not owner.scalar()
        or rows < DEFER_MIN_ROWS
        or conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT :cap) s"), {"cap": cap}).scalar_one()
        >= cap
    ):
        return []
    wait = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar()
    savepoint = conn.begin_nested()
    try:
        conn.execute(text("SELECT set_config('lock_timeout', :w, true)"), {"w": LOCK_WAIT})
        conn.execute(text(f"LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"))
        conn.execute(text("SELECT set_config('lock_timeout', :w, true)"), {"w": wait})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
            raise
        savepoint.rollback()  # also undoes the lock_timeout
        return []
    indexes = conn.execute(
        text("""
        SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisunique AND NOT x.indisprimary AND x.indisvalid
          AND x.indpred IS NULL AND x.indexprs IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname"""),
        {"t": t},
    ).all()
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    savepoint.commit()
    return [definition for _, definition in indexes]


def _insert(conn: Connection, layer: Layer, staged: Staged, rows: int) -> tuple[int, int]:
    """One INSERT … SELECT: staged rows typed, with their cell, skipping natural keys already stored."""
    t = layer.table
    given = {f.column for f in layer.fields if f.name in staged.fields or f.default is not None}
    # a field the input lacks (and that has no default) is left to its column's default
    cols = [c.name for c in t.c if c.name in given and c.name not in layer.computed]
    computed = dict(layer.computed)
    target = cols + list(computed)
    select = [f"s.{c}" for c in cols] + [f"({expr})" for expr in computed.values()]
    order = "ORDER BY s.row_no"  # rows go in in the input's order (ids and generated numbers follow it)
    if not layer.spatial:
        sql = f"""
            WITH ins AS (
              INSERT INTO {t.name} ({", ".join(target)}) SELECT {", ".join(select)} FROM stage s {order}
              ON CONFLICT ({layer.natural_key}) DO NOTHING RETURNING 1
            ) SELECT count(*) FROM ins"""
        return conn.execute(text(sql)).scalar_one(), 0  # count(*): one row
    geom = "ST_SetSRID(ST_MakePoint(st.lon, st.lat), 4326)" if staged.lon else "st.geom"
    if t.c.geom.type.geometry_type == "MULTIPOLYGON":  # type: ignore[attr-defined]  # geoalchemy2 Geometry (untyped)
        geom = f"ST_Multi({geom})"
    timed = layer.time_column in cols
    at = f"COALESCE(s.{layer.time_column}, now())" if timed else "now()"
    if layer.is_point and rows >= BULK_MIN_ROWS:
        size = prepare_point_tiles(conn)
        lon, lat = ("s.lon", "s.lat") if staged.lon else ("ST_X(s.g)", "ST_Y(s.g)")
        assignment = point_cell_join(lon, lat, at, size)
    else:
        assignment = cell_join("s.g", at)
    sql = f"""
        WITH ins AS (
          INSERT INTO {t.name} (geom, cell_id, {", ".join(target)})
          SELECT s.g, c.cell_id, {", ".join(select)}
          FROM (SELECT st.*, {geom} AS g FROM stage st) s {assignment}
          {order}
          ON CONFLICT ({layer.natural_key}) DO NOTHING
          RETURNING id, geom, cell_id{", " + layer.time_column if timed else ""}
        )"""
    if layer.shares:
        ins_at = f"COALESCE(ins.{layer.time_column}, now())" if timed else "now()"
        sql += f""", fc AS (
          INSERT INTO feature_cells (layer, feature_id, cell_id, share)
          SELECT '{layer.name}', ins.id, s.cell_id, s.share FROM ins {shares_join("ins.geom", ins_at)}
          RETURNING 1
        )"""
    if layer.on_insert:
        sql += f", hook AS ({layer.on_insert} RETURNING 1)"
    sql += " SELECT count(*), count(*) FILTER (WHERE cell_id IS NULL) FROM ins"
    imported, out = conn.execute(text(sql)).one()  # count(*) without GROUP BY: one row
    return imported, out


def _write_rejects(conn: Connection, path: str | Path, staged: Staged, problems: Problems) -> None:
    """Every rejected row with its reasons and its values as the input gave them."""
    cols = [c for c, _ in staged.headers]
    rows = conn.execute(
        text(f"SELECT row_no, {', '.join(cols) or 'NULL'} FROM stage_raw WHERE row_no = ANY(:r) ORDER BY row_no"),
        {"r": list(problems.by_row)},
    ).all()
    # the input's own text goes back out, so a formula in it is neutralised like every other export's
    sheets.write_csv(
        Path(path),
        ["record", "reasons", *(name for _, name in staged.headers)],
        (
            [staged.records[row_no], "; ".join(f"{f}: {m}" for f, m in problems.by_row[row_no]), *values[: len(cols)]]
            for row_no, *values in rows
        ),
    )
