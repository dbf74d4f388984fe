"""The start (the map), the grid in figures (/overview) and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user

from gridmgr.grid import overview as grid_overview
from gridmgr.web.database import engine

bp = Blueprint("home", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 (through the error handler) when it does not."""
    with engine().connect() as conn:
        grid_overview.answers(conn)
    return jsonify({"status": "ok", "database": "ok"})


# the administrators' start pages: their work is not on the map
ADMIN_START = {"secadmin": "security.sessions", "auditor": "security.audit_log"}


@bp.get("/")
def index():
    """The start: the map of the grid (its own view sends an anonymous visitor through the login)."""
    role = current_user.role if current_user.is_authenticated else None
    return redirect(url_for(ADMIN_START.get(role or "", "maps.supervisor_map")))


@bp.get("/overview")
def overview():
    """The grid in figures: districts, streets, communities, cells, units, people, layers."""
    with engine().connect() as conn:
        figures = grid_overview.overview(conn)
    return render_template(
        "overview.html",
        regions=figures.regions,
        cells=figures.cells,
        districts=figures.districts,
        units=figures.units,
        people=figures.people,
        layer_counts=figures.layer_counts,
    )
