"""The app's database: one engine per app, resolved on first use, never at import."""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from gridmgr.db import connect


def init_app(app: Flask) -> None:
    """Reserve the engine slot; `engine()` fills it when a request first needs the database."""
    app.extensions["gridmgr.engine"] = None


def engine() -> Engine:
    """The app's engine (the embedded cluster is started and migrated on first use)."""
    eng = current_app.extensions.get("gridmgr.engine")
    if eng is None:
        eng = connect(current_app.config["GRIDMGR"])
        current_app.extensions["gridmgr.engine"] = eng
    return eng
