"""Vector tiles: one ST_AsMVT statement per tile, the layers' data versions, and a bounded tile cache.

Framework-free: gridmgr.web.views.tiles turns a request into `parse_tile(...)`, looks in a `TileCache`
under `tile_key`, and calls `fetch` for the layer's data version and, unless a copy at hand is
current, the tile. Tiles carry few attributes, the same for every user:

- `cells`: at z ≥ CELL_ZOOM the open cells (MVT layer `cells`: code, community, unit = the territorial
  unit's code); from COMMUNITY_ZOOM below that the communities (`communities`: code, name, cells = open
  cells in it); lower still the streets (`streets`, the same properties). Choropleths style the cells
  from a code → value JSON of their own.
- `cases`: at z ≥ CASE_POINT_ZOOM the cases (`cases`: id, category, status, overdue); below it, and
  whenever a tile would hold more than MAX_FEATURES cases, counts in BINS × BINS squares of the tile
  (`cases_counts`: count, overdue). Filters: status, category, period (case_query.parse_period) and
  overdue; with no period, the DEFAULT_WINDOW before now. "Now" is floored to NOW_STEP, so a tile
  stays cacheable that long while the overdue flags follow the clock.
- every other spatial layer of the registry: its features (`<layer>`: id, the fields marked `tile`,
  the layer's derived values such as a billboard's `expired`), or `<layer>_counts` when a tile would
  hold more than MAX_FEATURES of them; lines and polygons from LAYER_MIN_ZOOM.

A tile never holds more than MAX_FEATURES features. Geometry goes to tile space with ST_AsMVTGeom
over ST_TileEnvelope; rows are found through the GiST index of their stored SRID (cells: the EPSG:3857
copy `geom_3857`). Counts bin lon/lat arithmetically in Web Mercator, transforming no point.

Data versions (`layer_versions`, migration 0005) go up by one with every committed transaction that
changes a layer's tables. A tile is known by `tile_key` (layer, z/x/y, filters, the moment it depends
on: now for cases, today for layers with a `:today` value) and its data version: the ETag holds both,
and a cached copy is served only while its version is the database's. `fetch` reads the version alone
when a copy at hand may be current, else the version and the tile in one statement (one snapshot); a
caller's access test (the web's login check) rides in the same statement, so a tile costs one round trip.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg2 as pg_psycopg2
from sqlalchemy.engine import Connection

from gridmgr.cases import filters as case_query
from gridmgr.cases import queries
from gridmgr.codes import CASE_STATES, TZ
from gridmgr.errors import InputError, NotFound
from gridmgr.plugins import registry

if TYPE_CHECKING:
    from psycopg2.extensions import cursor as Cursor

EXTENT = 4096  # tile coordinate space
BUFFER = 64  # clip buffer (tile units): symbols at an edge draw in both tiles
MAX_ZOOM = 24
MAX_FEATURES = 2000  # never more features in one tile
BINS = 32  # count squares per tile side (BINS² ≤ MAX_FEATURES)
CASE_POINT_ZOOM = 15  # cases one by one from this zoom, counted below it
CELL_ZOOM = 13  # cells one by one from this zoom
COMMUNITY_ZOOM = 11  # communities from this zoom up to CELL_ZOOM, streets below
LAYER_MIN_ZOOM = 12  # lines and polygons of the other layers from this zoom
DEFAULT_WINDOW = timedelta(days=30)
NOW_STEP = timedelta(minutes=1)
TILE_FORMAT = 1  # raise when what a tile holds changes: old ETags then stop matching
CELLS = "cells"
CASES = "cases"
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

_NUMBER = re.compile(r"[0-9]{1,9}")
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class CaseTileFilter:
    """Which cases a tile shows: states, categories, reported in [start, end), overdue or not."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    overdue: bool | None = None

    def canonical(self) -> str:
        """The filter as stable text, for cache keys and ETags."""
        iso = lambda d: d.astimezone(timezone.utc).isoformat() if d else ""
        return (
            f"status={','.join(self.statuses)}&category={','.join(self.categories)}"
            f"&period={iso(self.start)}/{iso(self.end)}&overdue={self.overdue}"
        )


@dataclass(frozen=True)
class Tile:
    """One tile asked for: layer, z/x/y, case filters (cases only) and the moment it shows."""

    layer: str
    z: int
    x: int
    y: int
    now: datetime
    filters: CaseTileFilter | None = None

    @property
    def moment(self) -> str:
        """What in time the tile depends on besides the data: now (cases), today (`:today` values), nothing."""
        if self.layer == CASES:
            return self.now.isoformat()
        if self.layer != CELLS and _uses_today(registry.get(self.layer)):
            return self.now.astimezone(TZ).date().isoformat()
        return ""


def _uses_today(layer: registry.Layer) -> bool:
    """Whether a layer's derived values depend on the date (`:today`, e.g. a billboard's `expired`)."""
    return any(":today" in sql for sql in layer.derived.values())


def tile_layers() -> list[str]:
    """The layers served as tiles: the cells, then every spatial layer of the registry."""
    return [CELLS, *(la.name for la in registry.layers(spatial=True))]


def parse_zxy(z: str, x: str, y: str) -> tuple[int, int, int]:
    """z/x/y path parts → integers, InputError (400) unless 0 ≤ z ≤ MAX_ZOOM and 0 ≤ x, y < 2^z."""
    if not all(_NUMBER.fullmatch(str(v)) for v in (z, x, y)):
        raise InputError(f"{z}/{x}/{y} is not a tile address z/x/y of whole numbers", field="z/x/y")
    zi, xi, yi = int(z), int(x), int(y)
    if zi > MAX_ZOOM:
        raise InputError(f"zoom {zi} is beyond {MAX_ZOOM}", field="z")
    if xi >= 2**zi or yi >= 2**zi:
        raise InputError(f"tile {zi}/{xi}/{yi} does not exist: x and y run from 0 to {2**zi - 1}", field="x/y")
    return zi, xi, yi


def parse_case_filter(args: Mapping[str, Any], now: datetime) -> CaseTileFilter:
    """Query values status, category, period, overdue → CaseTileFilter; no period: DEFAULT_WINDOW before now."""
    statuses = tuple(sorted(set(case_query.split_values(args, "status"))))
    unknown = [s for s in statuses if s not in CASE_STATES]
    if unknown:
        raise InputError(
            f"unknown state {', '.join(map(repr, unknown))}; known: {', '.join(CASE_STATES)}", field="status"
        )
    categories = tuple(sorted(set(case_query.split_values(args, "category"))))
    bad = [c for c in categories if not re.fullmatch(r"C?[0-9]{4}", c)]
    if bad:
        raise InputError(f"{', '.join(map(repr, bad))} is not a category code such as 0102 or C0101", field="category")
    if (args.get("period") or "").strip():
        start, end = case_query.parse_period(args["period"])
    else:
        start, end = now - DEFAULT_WINDOW, None
    return CaseTileFilter(statuses, categories, start, end, case_query.parse_bool(args.get("overdue"), "overdue"))


def parse_tile(layer: str, z: str, x: str, y: str, args: Mapping[str, Any], now: datetime) -> Tile:
    """A tile request → Tile: NotFound for an unknown layer, InputError for a bad address or filter."""
    if layer not in tile_layers():
        raise NotFound(f"no tiles for layer {layer!r}; known: {', '.join(tile_layers())}")
    zi, xi, yi = parse_zxy(z, x, y)
    # floored, so that requests within one step share a cache entry (and an ETag)
    step = NOW_STEP.total_seconds()
    now = _EPOCH + timedelta(seconds=(now - _EPOCH).total_seconds() // step * step)
    return Tile(layer, zi, xi, yi, now, parse_case_filter(args, now) if layer == CASES else None)


# ---------------------------------------------------------------------------------------------- SQL


def _envelope(margin: bool = False) -> str:
    return f"ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT})" if margin else "ST_TileEnvelope(:z, :x, :y)"


def _mvt_geom(geom: str) -> str:
    return f"ST_AsMVTGeom({geom}, {_envelope()}, {EXTENT}, {BUFFER}, true)"


def _in_tile_4326(column: str = "f.geom", margin: bool = False) -> str:
    # a tile is a lon/lat rectangle too (Web Mercator keeps the axes apart); `_tile_box` gives its edges,
    # the buffer's clipped to the world (a transformed envelope past it would have no latitude)
    edges = ":b_west, :b_south, :b_east, :b_north" if margin else ":west, :south, :east, :north"
    return f"{column} && ST_MakeEnvelope({edges}, 4326)"


def _counts_sql(mvt_name: str, table: str, where: list[str], point: str, extra: dict[str, str]) -> str:
    """Counts of rows per BINS × BINS square of the tile; a row counts in one tile only (half-open edges).

    The square of a point comes from its lon/lat by the Web Mercator formulas (constants from
    `_tile_box`), so no point is transformed; the counts and their square's centre are the features.
    """
    extras = "".join(f", {sql} AS {name}" for name, sql in extra.items())
    sums = "".join(f", count(*) FILTER (WHERE {name})::int AS {name}" for name in extra)
    square = lambda offset: f"greatest(0, least(floor({offset})::int, {BINS - 1}))"
    i = square(f"(ST_X({point}) - :west) * :bins_per_lon")
    j = square(f"(:merc_north - ln(tan(pi() / 4 + radians(ST_Y({point})) / 2))) * :bins_per_merc")
    within = [
        _in_tile_4326(),
        *([_in_tile_4326(point)] if point != "f.geom" else []),
        f"ST_X({point}) < :east",
        f"ST_Y({point}) > :south",
    ]
    return f"""
      SELECT ST_AsMVT(b, '{mvt_name}', {EXTENT}, 'geom') FROM (
        SELECT count(*)::int AS count{sums},
               ST_Point((i + 0.5) * {EXTENT / BINS}, (j + 0.5) * {EXTENT / BINS}) AS geom
        FROM (SELECT {i} AS i, {j} AS j{extras} FROM {table} f
              WHERE {" AND ".join([*within, *where])}) p
        GROUP BY i, j ORDER BY i, j) b"""


def _features_or_counts(
    name: str,
    table: str,
    props: dict[str, str],
    where: list[str],
    *,
    point: str,
    counts_only: bool,
    extra_counts: dict[str, str] | None = None,
) -> str:
    """Features (at most MAX_FEATURES, in the tile and its buffer) or, past that, counts per square."""
    counts = _counts_sql(f"{name}_counts", table, where, point, extra_counts or {})
    if counts_only:
        return counts
    cols = ", ".join(f"{sql} AS {prop}" for prop, sql in props.items())
    return f"""
      WITH hits AS MATERIALIZED (
        SELECT {cols}, f.geom FROM {table} f
        WHERE {" AND ".join([_in_tile_4326(margin=True), *where])}
        LIMIT {MAX_FEATURES + 1})
      SELECT CASE WHEN (SELECT count(*) FROM hits) <= {MAX_FEATURES} THEN (
        SELECT ST_AsMVT(t, '{name}', {EXTENT}, 'geom') FROM (
          SELECT {", ".join(props)}, {_mvt_geom("ST_Transform(geom, 3857)")} AS geom FROM hits ORDER BY id) t
        WHERE t.geom IS NOT NULL)
      ELSE ({counts}) END"""


def _case_sql(tile: Tile) -> tuple[str, dict]:
    flt = tile.filters or CaseTileFilter()
    where: list[str] = []
    params: dict[str, Any] = {"now": tile.now}
    if flt.statuses:
        where.append("f.status = ANY(:statuses)")
        params["statuses"] = list(flt.statuses)
    if flt.categories:
        where.append("f.category_code = ANY(:categories)")
        params["categories"] = list(flt.categories)
    if flt.start is not None:
        where.append("f.reported_at >= :start")
        params["start"] = flt.start
    if flt.end is not None:
        where.append("f.reported_at < :end")
        params["end"] = flt.end
    if flt.overdue is not None:
        where.append(queries.OVERDUE_SQL if flt.overdue else f"NOT {queries.OVERDUE_SQL}")
    props = {"id": "f.id", "category": "f.category_code", "status": "f.status", "overdue": queries.OVERDUE_SQL}
    sql = _features_or_counts(
        CASES,
        "cases",
        props,
        where,
        point="f.geom",
        counts_only=tile.z < CASE_POINT_ZOOM,
        extra_counts={"overdue": queries.OVERDUE_SQL},
    )
    return sql, params


def _layer_sql(tile: Tile) -> tuple[str, dict]:
    layer = registry.get(tile.layer)
    if not layer.is_point and tile.z < LAYER_MIN_ZOOM:
        return "SELECT NULL::bytea", {}
    props = {
        "id": "f.id",
        **{f.name: f"f.{f.column}" for f in layer.fields if f.tile},
        **{name: sql for name, sql in layer.derived.items()},
    }
    params = {"today": tile.now.astimezone(TZ).date()} if _uses_today(layer) else {}
    sql = _features_or_counts(
        layer.name,
        layer.table.name,
        props,
        [],
        counts_only=False,
        point="f.geom" if layer.is_point else "ST_Centroid(f.geom)",
    )
    return sql, params


def _cells_sql(tile: Tile) -> tuple[str, dict]:
    if tile.z < CELL_ZOOM:
        return _regions_sql("community" if tile.z >= COMMUNITY_ZOOM else "street"), {}
    # more cells than the cap (small cells, a big buffer): the tile shows their communities instead
    return (
        f"""
      WITH hits AS MATERIALIZED (
        SELECT c.id, c.code, c.community_id, c.geom_3857 FROM grid_cells c
        WHERE c.geom_3857 && {_envelope(margin=True)} AND c.valid_to IS NULL
        LIMIT {MAX_FEATURES + 1})
      SELECT CASE WHEN (SELECT count(*) FROM hits) <= {MAX_FEATURES} THEN (
        SELECT ST_AsMVT(t, 'cells', {EXTENT}, 'geom') FROM (
          SELECT h.code, cm.code AS community, u.code AS unit, {_mvt_geom("h.geom_3857")} AS geom
          FROM hits h
          JOIN regions cm ON cm.id = h.community_id
          LEFT JOIN cell_units cu ON cu.cell_id = h.id AND cu.duty = 'territorial'
          LEFT JOIN units u ON u.id = cu.unit_id
          ORDER BY h.code) t
        WHERE t.geom IS NOT NULL)
      ELSE ({_regions_sql("community")}) END""",
        {},
    )


def _regions_sql(level: str) -> str:
    """Communities or streets (code, name, open cells) in the tile; the first MAX_FEATURES by code."""
    name = {"community": "communities", "street": "streets"}[level]
    # open cells per region: a community's own, a street's through its communities
    cells = (
        "(SELECT count(*) FROM grid_cells c WHERE c.community_id = r.id AND c.valid_to IS NULL)"
        if level == "community"
        else "(SELECT count(*) FROM regions cm JOIN grid_cells c ON c.community_id = cm.id "
        "WHERE cm.parent_id = r.id AND c.valid_to IS NULL)"
    )
    return f"""
      SELECT ST_AsMVT(t, '{name}', {EXTENT}, 'geom') FROM (
        SELECT r.code, r.name, {cells}::int AS cells, {_mvt_geom("ST_Transform(r.geom, 3857)")} AS geom
        FROM regions r
        WHERE r.level = '{level}' AND {_in_tile_4326("r.geom", margin=True)}
        ORDER BY r.code LIMIT {MAX_FEATURES}) t
      WHERE t.geom IS NOT NULL"""


def tile_sql(tile: Tile) -> tuple[str, dict]:
    """The one statement that makes a tile (an MVT bytea, NULL when empty) and its parameters."""
    build = _cells_sql if tile.layer == CELLS else _case_sql if tile.layer == CASES else _layer_sql
    sql, params = build(tile)
    return sql, {"z": tile.z, "x": tile.x, "y": tile.y, **_tile_box(tile), **params}


def _tile_box(tile: Tile) -> dict[str, float]:
    """The tile's lon/lat edges, with its buffer (b_…), and the scales that put a lon/lat in a count square."""
    n = 2**tile.z
    m = BUFFER / EXTENT
    merc = lambda row: math.pi * (1 - 2 * row / n)
    lat = lambda row: math.degrees(math.atan(math.sinh(max(-math.pi, min(math.pi, merc(row))))))
    lon = lambda col: max(-180.0, min(180.0, col / n * 360 - 180))
    x, y = tile.x, tile.y
    return {
        "west": lon(x),
        "east": lon(x + 1),
        "north": lat(y),
        "south": lat(y + 1),
        "b_west": lon(x - m),
        "b_east": lon(x + 1 + m),
        "b_north": lat(y - m),
        "b_south": lat(y + 1 + m),
        "merc_north": merc(y),
        "bins_per_lon": BINS * n / 360,
        "bins_per_merc": BINS * n / (2 * math.pi),
    }


def render(conn: Connection, tile: Tile) -> bytes:
    """The tile's MVT bytes (b"" for a tile with no features), without its version."""
    sql, params = tile_sql(tile)
    body = conn.execute(text(sql), params).scalar()
    return bytes(body) if body is not None else b""


# ------------------------------------------------------------------------------- versions and caching


def data_version(conn: Connection, layer: str) -> int | None:
    """The layer's data version; None when the database keeps none for it (its tiles are then not cached)."""
    return conn.execute(text("SELECT version FROM layer_versions WHERE layer = :l"), {"l": layer}).scalar()


class Fetched(NamedTuple):
    """What `fetch` found: the layer's data version, the tile (None: a known version is current), access."""

    version: int | None
    body: bytes | None
    allowed: bool = True


# an access test and its parameters: an SQL boolean expression such as accounts.ACTIVE_SESSION_SQL
Access = tuple[str, Mapping[str, Any]]

# Sent ahead of a tile's statement, in the same query string. JIT off: the planner costs both branches
# of a features-or-counts CASE (one of them runs), so decade-long case tiles pass jit_above_cost, and
# compiling took 20–25 ms of a 50–70 ms tile at z15–16 (bench/tiles.py) while saving nothing.
# In autocommit a multi-statement query is one implicit transaction: SET LOCAL ends with it.
STATEMENT_SETTINGS = "SET LOCAL jit = off; "


def fetch(cur: Cursor, tile: Tile, known: Iterable[int] = (), access: Access | None = None) -> Fetched:
    """The layer's data version and the tile, the tile None when the version is one of `known`.

    `known`: the versions of the copies at hand (the cache's, the client's ETag). When one of them is
    current, only the version is read; otherwise one statement reads the version and makes the tile
    (b"" for no features), both from one snapshot. A layer without a version gives (None, bytes).
    `access`, when given, is tested in the same statement: when it fails, nothing else is read or made
    and the result is `Fetched(None, None, False)`.

    Takes a psycopg2 cursor, not a Connection: a tile's overhead over its SQL is what the endpoint is
    measured by (bench/tiles.py), and SQLAlchemy's execution path costs more than the statement of a
    small tile. The cursor's connection may be in autocommit: each statement is its own snapshot.
    """
    known = set(known)
    check, check_params = access or ("true", {})
    version_sql = "(SELECT version FROM layer_versions WHERE layer = :layer)"
    # the access test is the WHERE of a one-row SELECT: a one-time filter, tested before anything in the
    # row is computed, so a refused login gets no row and no tile is made (measured: 0.08 ms over the
    # bare tile statement, against 0.2 ms for a CASE over a joined test)
    if known:
        cur.execute(_driver_sql(f"SELECT {version_sql} WHERE {check}"), {**check_params, "layer": tile.layer})
        row = cur.fetchone()
        if row is None:
            return Fetched(None, None, False)
        if row[0] in known:
            return Fetched(row[0], None)
    sql, params = tile_sql(tile)
    cur.execute(
        _driver_sql(f"{STATEMENT_SETTINGS}SELECT {version_sql}, ({sql}) WHERE {check}"),
        {**params, **check_params, "layer": tile.layer},
    )
    row = cur.fetchone()
    if row is None:
        return Fetched(None, None, False)
    version, body = row
    return Fetched(version, bytes(body) if body is not None else b"")


@lru_cache(maxsize=512)
def _driver_sql(sql: str) -> str:
    """A statement with :name parameters as psycopg2 takes it (%(name)s, % doubled), as SQLAlchemy compiles it.

    Compiled once per text: the statements differ by layer, zoom band and which filters are set
    (a few hundred at most), never by the tile, whose address and filter values are parameters.
    """
    return str(text(sql).compile(dialect=pg_psycopg2.dialect()))


def tile_key(tile: Tile) -> str:
    """What a tile's bytes depend on besides its layer's data: layer, z/x/y, filters, moment, format."""
    flt = tile.filters.canonical() if tile.filters else ""
    return f"{tile.layer}/{tile.z}/{tile.x}/{tile.y}?{flt}|{tile.moment}|f{TILE_FORMAT}"


def etag(key: str, version: int) -> str:
    """The ETag (unquoted) of a tile at a data version: the same on every app server."""
    return f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.{version}"


def etag_versions(key: str, etags: Iterable[str]) -> list[int]:
    """The data versions that a client's ETags name for this tile (none when they name another tile)."""
    prefix = etag(key, 0)[:-1]
    return [int(e[len(prefix) :]) for e in etags if e.startswith(prefix) and e[len(prefix) :].isdigit()]


class TileCache:
    """A thread-safe LRU of tiles (key → data version and bytes), bounded by their total size."""

    ENTRY_OVERHEAD = 200  # bytes counted per entry besides key and tile, so empty tiles count too

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _size(self, key: str, body: bytes) -> int:
        return len(key) + len(body) + self.ENTRY_OVERHEAD

    def get(self, key: str) -> tuple[int, bytes] | None:
        """(version, bytes) filed under key, now the most recently used; None when absent."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, version: int, body: bytes) -> None:
        """File a tile under key (replacing an older version), dropping the least recently used past the bound."""
        size = self._size(key, body)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= self._size(key, old[1])
            self._items[key] = (version, body)
            self.bytes += size
            while self.bytes > self.max_bytes:
                k, (_, b) = self._items.popitem(last=False)
                self.bytes -= self._size(k, b)
