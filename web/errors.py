"""One error handler: HTML for pages, JSON for the API; internals are logged, never shown."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from gridmgr.errors import DatabaseUnavailable, GridmgrError

DB_DOWN = "数据库暂不可用，请稍后再试。The database is unavailable; please try again shortly."


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/open311/", "/healthz")) or (
        request.accept_mimetypes.best == "application/json")


def _respond(status: int, message: str):
    if _wants_json():
        return jsonify({"error": {"status": status, "message": message}}), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(GridmgrError)
    def gridmgr_error(exc: GridmgrError):
        if isinstance(exc, DatabaseUnavailable):
            app.logger.warning("database unavailable: %s", exc)
            return _respond(503, DB_DOWN)
        return _respond(exc.status, exc.message)

    @app.errorhandler(OperationalError)
    def db_down(exc: OperationalError):
        app.logger.warning("database error: %s", exc)
        return _respond(503, DB_DOWN)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _respond(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return _respond(500, "内部错误，已记录。An internal error occurred and has been logged.")
