"""The app's database: one engine per app, resolved on first use, never at import."""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from gridmgr.db.engine import connect, read_engine_for


def init_app(app: Flask) -> None:
    """Reserve the engine slot; `engine()` fills it when a request first needs the database."""
    app.extensions["gridmgr.engine"] = None


def engine(app: Flask | None = None) -> Engine:
    """The app's engine (the embedded cluster is started and migrated on first use)."""
    app = app or current_app
    eng = app.extensions.get("gridmgr.engine")
    if eng is None:
        eng = connect(app.config["GRIDMGR"])
        app.extensions["gridmgr.engine"] = eng
    return eng


def read_engine(app: Flask | None = None) -> Engine:
    """The app's pool for one-statement reads in autocommit (tiles), on the same database as `engine()`."""
    app = app or current_app
    eng = app.extensions.get("gridmgr.read_engine")
    if eng is None:
        eng = read_engine_for(engine(app).url.render_as_string(hide_password=False))
        app.extensions["gridmgr.read_engine"] = eng
    return eng
