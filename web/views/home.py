"""The start (the map), the grid in figures (/overview) and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for
from sqlalchemy import text

from gridmgr.plugins.registry import layers
from gridmgr.web.database import engine

bp = Blueprint("home", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 (through the error handler) when it does not."""
    with engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    return jsonify({"status": "ok", "database": "ok"})


@bp.get("/")
def index():
    """The start: the map of the grid (its own view sends an anonymous visitor through the login)."""
    return redirect(url_for("maps.supervisor_map"))


@bp.get("/overview")
def overview():
    """The grid in figures: districts, streets, communities, cells, units, people, layers."""
    with engine().connect() as conn:
        regions = dict(conn.execute(text("SELECT level, count(*) FROM regions GROUP BY level")).all())
        cells = conn.execute(text("SELECT count(*) FROM grid_cells WHERE valid_to IS NULL")).scalar()
        districts = (
            conn.execute(
                text("""
            SELECT d.code, d.name, d.area_m2,
                   (SELECT count(*) FROM regions s WHERE s.parent_id = d.id) AS streets,
                   (SELECT count(*) FROM regions c JOIN regions s ON c.parent_id = s.id
                     WHERE s.parent_id = d.id) AS communities,
                   (SELECT count(*) FROM grid_cells g JOIN regions c ON c.id = g.community_id
                     LEFT JOIN regions s ON s.id = c.parent_id
                     WHERE g.valid_to IS NULL AND (s.parent_id = d.id OR c.id = d.id OR s.id = d.id)) AS cells
            FROM regions d WHERE d.level = 'district' ORDER BY d.code
        """)
            )
            .mappings()
            .all()
        )
        units = conn.execute(text("SELECT kind, count(*) FROM units GROUP BY kind ORDER BY kind")).all()
        people = conn.execute(text("SELECT role, count(*) FROM people GROUP BY role ORDER BY role")).all()
        layer_counts = [
            (layer, conn.execute(text(f"SELECT count(*) FROM {layer.table.name}")).scalar()) for layer in layers()
        ]
    return render_template(
        "overview.html",
        regions=regions,
        cells=cells,
        districts=districts,
        units=units,
        people=people,
        layer_counts=layer_counts,
    )
