"""The desks' small reads: work-queue counts and case numbers, dispatch notes, units, a case's photos."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.workflow import Actor, scope_filter


def queue_condition(actor: Actor, where: str) -> tuple[str, dict[str, Any]]:
    """A queue's condition joined with the actor's scope over `cases f`, and its parameters."""
    cond, params = scope_filter(actor, "f")
    return f"({where}) AND ({cond})", {**params, "me": actor.user_id}


def queue_count(conn: Connection, where: str, params: dict[str, Any]) -> int:
    """How many cases (`cases f`) meet a queue's condition."""
    n: int = conn.execute(text(f"SELECT count(*) FROM cases f WHERE {where}"), params).scalar_one()
    return n


def queue_case_nos(conn: Connection, where: str, params: dict[str, Any], order: str, limit: int) -> list[str]:
    """The numbers of the first `limit` cases of a queue, in its order."""
    sql = f"SELECT f.case_no FROM cases f WHERE {where} ORDER BY {order} LIMIT :limit"
    return list(conn.execute(text(sql), {**params, "limit": limit}).scalars().all())


def dispatch_rule_note(conn: Connection, rule_id: int) -> str | None:
    """A dispatch rule's note, None when it has none."""
    note: str | None = conn.execute(text("SELECT note FROM dispatch_rules WHERE id = :id"), {"id": rule_id}).scalar()
    return note


def all_units(conn: Connection) -> list[Any]:
    """Every unit (id, code, name, kind), by kind and code: the choices of a dispatch override."""
    return list(conn.execute(text("SELECT id, code, name, kind FROM units ORDER BY kind, code")).mappings().all())


def category_and_cell(conn: Connection, case_id: int) -> tuple[str, int | None]:
    """A case's category code and cell id."""
    category, cell_id = conn.execute(
        text("SELECT category_code, cell_id FROM cases WHERE id = :id"), {"id": case_id}
    ).one()
    return category, cell_id


def has_photo(conn: Connection, case_id: int, name: str) -> bool:
    """Whether a photo belongs to the case (its report or one of its events)."""
    return bool(
        conn.execute(
            text("""
            SELECT 1 FROM cases f WHERE f.id = :id AND (:name = ANY(f.photos)
               OR EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = f.id AND :name = ANY(e.photos)))
        """),
            {"id": case_id, "name": name},
        ).scalar()
    )


def cell_point(conn: Connection, cell_id: int) -> tuple[float, float]:
    """A point inside a cell (ST_PointOnSurface), lon/lat."""
    x, y = conn.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid_cells WHERE id = :id) s"),
        {"id": cell_id},
    ).one()
    return x, y


def cell_geojson(conn: Connection, cell_id: int) -> str | None:
    """One cell's outline as GeoJSON text (7 decimals)."""
    out: str | None = conn.execute(
        text("SELECT ST_AsGeoJSON(geom, 7) FROM grid_cells WHERE id = :id"), {"id": cell_id}
    ).scalar()
    return out
