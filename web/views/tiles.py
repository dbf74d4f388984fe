"""Vector tiles: GET /tiles/<layer>/<z>/<x>/<y>.pbf for logged-in users (gridmgr.maps.tiles makes them).

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
the statement that reads the data version (and makes the tile), not by Flask-Login's user loader. It
runs on the app's read pool (autocommit, no pre-ping: `database.read_engine`). A map asks for dozens of
tiles at a time, each a few milliseconds of SQL, so what a request costs besides its statement counts:
`TileFastPath` serves a tile with a plain session or token login before Flask's request machinery
(contexts, routing, hooks) runs, through the same `respond` as the view; whatever it cannot answer
with a tile or a 304 (a bad address, a refused login, a remember-cookie login, an error) it leaves to
the app, which answers as for any other page.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from flask_login import current_user
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import Unauthorized
from werkzeug.http import quote_etag
from werkzeug.wrappers import Request

from gridmgr.cases import queries
from gridmgr.errors import GridmgrError
from gridmgr.maps import tiles
from gridmgr.web import auth
from gridmgr.web.database import read_engine

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

DEFAULT_CACHE_BYTES = 64 * 2**20
CACHE_CONTROL = "private, no-cache"
LOGIN_FIRST = "请先登录 Please log in."
FAILED = "gridmgr.tile_failed"  # environ key: the error the fast path hands to the view


@bp.before_request
def authenticate():
    """Someone who claims a login (session or bearer token); the claim itself is checked with the tile."""
    g.tile_access = auth.login_check()
    if g.tile_access is None:
        abort(401, description=LOGIN_FIRST)


def tile_cache(app: Flask) -> tiles.TileCache:
    """The app's tile cache, made on first use with the configured size."""
    cache = app.extensions.get("gridmgr.tile_cache")
    if cache is None:
        size = int(app.config.get("GRIDMGR_TILE_CACHE_BYTES", DEFAULT_CACHE_BYTES))
        cache = app.extensions["gridmgr.tile_cache"] = tiles.TileCache(size)
    return cache


@bp.get("/<layer>/<z>/<x>/<y>.pbf")
def tile(layer: str, z: str, x: str, y: str):
    """One tile, for the requests `TileFastPath` leaves to the app."""
    failed = request.environ.pop(FAILED, None)
    if failed is not None:
        raise failed  # the fast path's error, to the app's handlers (logged, 503 or 500), not run twice
    try:
        found = answer(current_app, request, (layer, z, x, y), g.tile_access)
    except GridmgrError:
        if not current_user.is_authenticated:  # the loader's own check: a stale login hears 401 first
            abort(401, description=LOGIN_FIRST)
        raise
    resp = Response(found.body, mimetype=tiles.MEDIA_TYPE) if found.body is not None else Response(status=found.status)
    resp.headers["Cache-Control"] = CACHE_CONTROL
    if found.etag:
        resp.set_etag(found.etag)
    return resp


class Answer(NamedTuple):
    """A tile request's answer: 200 with the tile's bytes or 304 without; the ETag when the layer has a version."""

    status: int
    etag: str | None
    body: bytes | None


def answer(app: Flask, req: Request, address: tuple[str, str, str, str], access: tiles.Access) -> Answer:
    """A 304 or the cached copy while the layer is unchanged, else a fresh tile from PostGIS.

    With a copy at hand (the client's ETag, the cache) the layer's version is read first; the tile is
    made, in the same statement as the version, only when no copy is current. Either statement also
    tests `access`: a login that no longer holds raises Unauthorized, a bad address or filter GridmgrError.
    """
    now = queries.resolve_now(app.config.get("GRIDMGR_NOW"))
    spec = tiles.parse_tile(*address, req.args, now)
    key = tiles.tile_key(spec)
    cache = tile_cache(app)
    cached = cache.get(key) if cache.max_bytes else None
    # a weak tag names the same bytes here (If-None-Match compares weakly)
    client = (
        tiles.etag_versions(key, req.if_none_match.as_set(include_weak=True))
        if "HTTP_IF_NONE_MATCH" in req.environ
        else []
    )
    found = _fetch(app, spec, [*client, *([cached[0]] if cached else [])], access)
    if not found.allowed:
        raise Unauthorized(LOGIN_FIRST)
    version, body = found.version, found.body
    if version is None:
        return Answer(200, None, body)
    etag = tiles.etag(key, version)
    if body is None and version in client:
        return Answer(304, etag, None)
    if body is None:
        body = cached[1]
    elif cache.max_bytes:
        cache.put(key, version, body)
    return Answer(200, etag, body)


def _fetch(app: Flask, spec: tiles.Tile, known: list[int], access: tiles.Access) -> tiles.Fetched:
    """`tiles.fetch` on a connection of the app's read pool, errors raised as SQLAlchemy's.

    The pool does not ping a connection before handing it out (a round trip per tile), so a connection
    found lost (the server restarted, an idle connection cut) is dropped, with every other idle one of
    the pool (after a restart they are all gone), and the tile asked once more on a new one; a lost
    second connection, like any other error, is raised, wrapped as SQLAlchemy would wrap it, so the
    app's handlers (503: database down) apply.
    """
    eng = read_engine(app)
    dbapi_error = eng.dialect.loaded_dbapi.Error
    for attempt in (1, 2):
        pooled = eng.raw_connection()
        try:
            with pooled.dbapi_connection.cursor() as cur:
                return tiles.fetch(cur, spec, known, access)
        except dbapi_error as exc:
            lost = eng.dialect.is_disconnect(exc, pooled.dbapi_connection, None)
            if lost:
                pooled.invalidate(exc)
                eng.pool.dispose()  # the idle ones: connections checked out elsewhere are not touched
            if not lost or attempt == 2:
                raise DBAPIError.instance(
                    None, None, exc, dbapi_error, connection_invalidated=lost, dialect=eng.dialect
                ) from exc
        finally:
            pooled.close()
    raise AssertionError("unreachable")


class TileFastPath:
    """WSGI middleware: serves `GET /tiles/…` with a session or token login without going through Flask.

    Only the answers a map asks for all day (a tile, a 304) are given here; every other request, and
    every tile request this cannot settle (no plain login claim, a bad address), goes on to the app
    unchanged, which answers it as before. A refused login or an error on the way (the database down,
    a bug) goes on too, with the exception, which the view raises for the app's handlers to answer
    (and log), so no statement runs twice.
    """

    PREFIX = "/tiles/"

    def __init__(self, app: Flask, downstream):
        self.app = app
        self.downstream = downstream
        self.sessions = auth.SessionCookies(app)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO", "").startswith(self.PREFIX):
            found = self._serve(environ)
            if found is not None:
                headers = [("Cache-Control", CACHE_CONTROL), ("Vary", "Cookie")]  # as Flask's session sets it
                if found.etag:
                    headers.append(("ETag", quote_etag(found.etag)))
                if found.status == 304:
                    start_response("304 Not Modified", headers)
                    return []
                start_response(
                    "200 OK", [("Content-Type", tiles.MEDIA_TYPE), ("Content-Length", str(len(found.body))), *headers]
                )
                return [found.body]
        return self.downstream(environ, start_response)

    def _serve(self, environ) -> Answer | None:
        layer, _, rest = environ["PATH_INFO"][len(self.PREFIX) :].partition("/")
        address = (layer, *rest.removesuffix(".pbf").split("/"))
        if len(address) != 4 or not rest.endswith(".pbf") or not all(address):
            return None
        req = Request(environ)
        # no session data the fast path can read (another session interface): only a token claim counts
        access = auth.login_claim(self.app, req.headers, self.sessions.data(req.cookies) or {})
        if access is None:
            return None
        try:
            return answer(self.app, req, address, access)
        except GridmgrError:
            return None  # a bad address or filter: the app finds it again from the request alone
        except Exception as exc:  # noqa: BLE001 - a refused login, the database's error or ours: answered once
            environ[FAILED] = exc
            return None


def serve_beside(app: Flask) -> None:
    """Put `TileFastPath` in front of the app's WSGI callable."""
    app.wsgi_app = TileFastPath(app, app.wsgi_app)
