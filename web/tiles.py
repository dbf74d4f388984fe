"""Vector tiles: GET /tiles/<layer>/<z>/<x>/<y>.pbf for logged-in users (gridmgr.tiles makes them).

Layers: `cells`, `cases` and every other spatial layer of the registry (parking_zones, parking_spaces,
construction, billboards). Query parameters, cases only: status, category (comma-separated or
repeated), period (2026, 2026-10, 2026-10-13 or FROM/TO; default: the last 30 days) and overdue
(true/false); other parameters are ignored. A bad z/x/y or filter is a 400; nobody logged in, a 401
(a map's tile requests cannot follow a redirect to the login page).

Every response carries `Cache-Control: private, no-cache` and, where the layer keeps a data version,
an ETag: a browser keeps the tile and asks again with If-None-Match, and gets a 304 while the layer is
unchanged. The tiles are the same for every user, so the app keeps one in-process LRU of them
(GRIDMGR_TILE_CACHE_BYTES in the app's config, default 64 MiB; 0 turns it off) keyed like the ETag.

A tile costs one statement, login check included: the session's or token's account is tested inside
the statement that reads the data version (and makes the tile), not by Flask-Login's user loader, and
it runs in autocommit on the pooled psycopg2 connection, so no BEGIN/ROLLBACK round trips either.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, abort, current_app, g, request
from flask_login import current_user
from sqlalchemy.exc import DBAPIError

from gridmgr import caseviews, tiles
from gridmgr.errors import GridmgrError
from gridmgr.web import auth
from gridmgr.web.database import engine

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

DEFAULT_CACHE_BYTES = 64 * 2 ** 20
CACHE_CONTROL = "private, no-cache"
LOGIN_FIRST = "请先登录 Please log in."


@bp.before_request
def authenticate():
    """Someone who claims a login (session or bearer token); the claim itself is checked with the tile."""
    g.tile_access = auth.login_check()
    if g.tile_access is None:
        abort(401, description=LOGIN_FIRST)


def tile_cache() -> tiles.TileCache:
    """The app's tile cache, made on first use with the configured size."""
    cache = current_app.extensions.get("gridmgr.tile_cache")
    if cache is None:
        size = int(current_app.config.get("GRIDMGR_TILE_CACHE_BYTES", DEFAULT_CACHE_BYTES))
        cache = current_app.extensions["gridmgr.tile_cache"] = tiles.TileCache(size)
    return cache


@bp.get("/<layer>/<z>/<x>/<y>.pbf")
def tile(layer: str, z: str, x: str, y: str):
    """One tile: a 304 or the cached copy while the layer is unchanged, else a fresh one from PostGIS.

    With a copy at hand (the client's ETag, the cache) the layer's version is read first; the tile is
    made, in the same statement as the version, only when no copy is current. Either statement also
    checks the login: a login that no longer holds gets a 401 and nothing else.
    """
    now = caseviews.resolve_now(current_app.config.get("GRIDMGR_NOW"))
    try:
        spec = tiles.parse_tile(layer, z, x, y, request.args, now)
    except GridmgrError:
        if not current_user.is_authenticated:  # the loader's own check: a stale login hears 401 first
            abort(401, description=LOGIN_FIRST)
        raise
    key = tiles.tile_key(spec)
    cache = tile_cache()
    cached = cache.get(key) if cache.max_bytes else None
    client = tiles.etag_versions(key, request.if_none_match.as_set())
    with _cursor() as cur:
        found = tiles.fetch(cur, spec, [*client, *([cached[0]] if cached else [])], g.tile_access)
    if not found.allowed:
        abort(401, description=LOGIN_FIRST)
    version, body = found.version, found.body
    if version is None:
        return _respond(Response(body, mimetype=tiles.MEDIA_TYPE), None)
    etag = tiles.etag(key, version)
    if body is None and version in client:
        return _respond(Response(status=304), etag)
    if body is None:
        body = cached[1]
    elif cache.max_bytes:
        cache.put(key, version, body)
    return _respond(Response(body, mimetype=tiles.MEDIA_TYPE), etag)


@contextmanager
def _cursor() -> Iterator:
    """A psycopg2 cursor in autocommit on a connection of the app's pool, errors raised as SQLAlchemy's.

    Autocommit: a tile is one read-only statement (two when a copy at hand proves stale), each its
    own snapshot, so the transaction a DBAPI connection opens by default would only add BEGIN and
    ROLLBACK round trips. The connection goes back to the pool as it came (not in autocommit); errors
    are wrapped as SQLAlchemy would wrap them, so the app's handlers (503: database down) still apply.
    """
    eng = engine()
    pooled = eng.raw_connection()
    dbapi = pooled.dbapi_connection
    try:
        dbapi.autocommit = True
        with dbapi.cursor() as cur:
            yield cur
    except eng.dialect.loaded_dbapi.Error as exc:
        lost = eng.dialect.is_disconnect(exc, dbapi, None)
        if lost:
            pooled.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, eng.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=eng.dialect) from exc
    finally:
        if not dbapi.closed:
            dbapi.autocommit = False
        pooled.close()


def _respond(resp: Response, etag: str | None) -> Response:
    resp.headers["Cache-Control"] = CACHE_CONTROL
    if etag:
        resp.set_etag(etag)
    return resp
