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
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request
from flask_login import current_user

from gridmgr import caseviews, tiles
from gridmgr.web.database import engine

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

DEFAULT_CACHE_BYTES = 64 * 2 ** 20
CACHE_CONTROL = "private, no-cache"


@bp.before_request
def authenticate():
    """Any logged-in user (session or bearer token); nobody else."""
    if not current_user.is_authenticated:
        abort(401, description="请先登录 Please log in.")


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
    made, in the same statement as the version, only when no copy is current.
    """
    now = caseviews.resolve_now(current_app.config.get("GRIDMGR_NOW"))
    spec = tiles.parse_tile(layer, z, x, y, request.args, now)
    key = tiles.tile_key(spec)
    cache = tile_cache()
    cached = cache.get(key) if cache.max_bytes else None
    client = tiles.etag_versions(key, request.if_none_match.as_set())
    with engine().connect() as conn:
        version, body = tiles.fetch(conn, spec, [*client, *([cached[0]] if cached else [])])
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


def _respond(resp: Response, etag: str | None) -> Response:
    resp.headers["Cache-Control"] = CACHE_CONTROL
    if etag:
        resp.set_etag(etag)
    return resp
