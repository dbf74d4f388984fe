"""One error handler: HTML for pages (in the page's language), JSON for the API; internals are logged, never shown."""

from __future__ import annotations

from collections.abc import Callable

import psycopg2
from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_login import current_user
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gridmgr.errors import DatabaseUnavailable, GridmgrError
from gridmgr.web.i18n import t

DB_ERRORS = (OperationalError, psycopg2.OperationalError, PoolTimeout, DatabaseUnavailable)
DB_DOWN = ("数据库暂不可用，请稍后再试。", "The database is unavailable; please try again shortly.")
INTERNAL = ("内部错误，已记录。", "An internal error occurred and has been logged.")
# werkzeug's own descriptions are English: pages say these instead (a description given on abort() is kept)
HTTP_TEXT = {
    400: ("请求无效。", "The request is not valid."),
    401: ("请先登录。", "Please log in."),
    403: ("您无权访问此页面。", "You may not open this page."),
    404: ("没有这个页面。", "There is no such page."),
    405: ("此页面不接受这种请求。", "This page does not take this kind of request."),
    413: ("上传的内容过大。", "The upload is too large."),
    500: INTERNAL,
}


# blueprints whose clients expect errors in a format of their own (Open311's <errors>), by URL prefix: a
# request refused before it reaches the blueprint (an unknown method) still gets that format
OWN_FORMAT: dict[str, Callable[[int, str], Response]] = {}


def own_format(prefix: str, respond: Callable[[int, str], Response]) -> None:
    """Let the errors of requests under `prefix` be answered by `respond(status, description)`."""
    OWN_FORMAT[prefix] = respond


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/open311/", "/healthz")) or (
        request.accept_mimetypes.best == "application/json"
    )


def _as_nobody() -> None:
    """Let the error page show the anonymous chrome: its menu and name would ask the dead database for the user."""
    from flask import g

    from gridmgr.web.auth import login_manager

    g._login_user = login_manager.anonymous_user()  # Flask-Login's slot for the request's user: never loaded now


def _respond(status: int, message: str | tuple[str, str]):
    """The error as JSON (both languages: API bodies do not follow the page language) or as a page."""
    if _wants_json():
        return jsonify({"error": {"status": status, "message": both(message)}}), status
    try:  # the page shows who is logged in: found now, so that a database gone away cannot fail the page too
        current_user._get_current_object()
    except DB_ERRORS:
        _as_nobody()
    return render_template(
        "error.html", status=status, message=t(*message) if isinstance(message, tuple) else message
    ), status


def both(message: str | tuple[str, str]) -> str:
    """A (中文, English) message as one text, as API bodies carry it."""
    return "".join(message) if isinstance(message, tuple) else message


def _http_message(exc: HTTPException) -> str | tuple[str, str]:
    """A description given on abort() as it is; werkzeug's default one in the page's language (JSON: as it was)."""
    if _wants_json() or (exc.description and exc.description != type(exc).description):
        return exc.description or exc.name
    return HTTP_TEXT.get(exc.code or 500) or exc.description or exc.name


def http_error(exc: HTTPException) -> Response:
    """An HTTP error in its client's format, a 405 with the methods it takes (`Allow`)."""
    status = exc.code or 500
    mine = next((fn for prefix, fn in OWN_FORMAT.items() if request.path.startswith(prefix)), None)
    resp = make_response(mine(status, both(_http_message(exc))) if mine else _respond(status, _http_message(exc)))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # what may be asked instead
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(GridmgrError)
    def gridmgr_error(exc: GridmgrError):
        if isinstance(exc, DatabaseUnavailable):
            app.logger.warning("database unavailable: %s", exc)
            _as_nobody()
            return _respond(503, DB_DOWN)
        return _respond(exc.status, exc.message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(psycopg2.OperationalError)  # the tiles' raw reads (gridmgr.maps.tiles) raise the driver's own
    @app.errorhandler(PoolTimeout)  # every pooled connection busy for the pool's whole wait
    def db_down(exc: Exception):
        app.logger.warning("database error: %s", exc)
        _as_nobody()
        return _respond(503, DB_DOWN)

    app.register_error_handler(HTTPException, http_error)

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return _respond(500, INTERNAL)
