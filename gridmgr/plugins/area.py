"""Features of any layer in an area at a moment: how one layer's checks ask about another's features.

A layer never imports another (tests/test_architecture.py); it asks here by the other layer's name.
The layer that owns the features says what "standing at a moment" means through the
`gridmgr_features_at` hook (a construction site stands while it is active); by default a feature
stands from its time column on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

from gridmgr.plugins import hooks, registry


def features_at_sql(layer: str) -> str:
    """SQL of the layer's features standing at :at (all columns of its table); NotFound for an unknown layer."""
    found = registry.get(layer)
    given = hooks.manager().hook.gridmgr_features_at(layer=layer)
    if given:
        return given
    return f"SELECT * FROM {found.table.name} f WHERE f.{found.time_column} <= CAST(:at AS timestamptz)"


def features_in_area(
    conn: Connection, layer: str, area: str, at: datetime, params: dict[str, Any] | None = None
) -> list[RowMapping]:
    """The layer's features standing at `at` that intersect the area (an SQL geometry over `params`)."""
    sql = f"""
        WITH area AS (SELECT {area} AS g), f AS ({features_at_sql(layer)})
        SELECT f.*, ST_Area(ST_Intersection(f.geom, area.g)::geography) AS overlap_m2,
               ST_Length(ST_Intersection(f.geom, area.g)::geography) AS overlap_m
        FROM f, area
        WHERE f.geom && area.g AND ST_Intersects(f.geom, area.g) AND NOT ST_Touches(f.geom, area.g)
        ORDER BY f.id
    """
    return list(conn.execute(text(sql), {**(params or {}), "at": at}).mappings())
