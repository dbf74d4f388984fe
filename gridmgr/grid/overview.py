"""The grid in figures: regions, cells, units, people and layer features, for the overview page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.plugins.registry import Layer, layers


@dataclass(frozen=True)
class Overview:
    """What /overview shows: counts per region level, cells in force, each district, units, people, layers."""

    regions: dict[str, int]
    cells: int
    districts: list[Any]
    units: list[Any]
    people: list[Any]
    layer_counts: list[tuple[Layer, int]]


DISTRICTS = """
    SELECT d.code, d.name, d.area_m2,
           (SELECT count(*) FROM regions s WHERE s.parent_id = d.id) AS streets,
           (SELECT count(*) FROM regions c JOIN regions s ON c.parent_id = s.id
             WHERE s.parent_id = d.id) AS communities,
           (SELECT count(*) FROM grid_cells g JOIN regions c ON c.id = g.community_id
             LEFT JOIN regions s ON s.id = c.parent_id
             WHERE g.valid_to IS NULL AND (s.parent_id = d.id OR c.id = d.id OR s.id = d.id)) AS cells
    FROM regions d WHERE d.level = 'district' ORDER BY d.code
"""


def answers(conn: Connection) -> None:
    """One round trip: raises (through the driver) when the database does not answer."""
    conn.execute(text("SELECT 1"))


def overview(conn: Connection) -> Overview:
    """The grid in figures, as the overview page shows them."""
    return Overview(
        regions={level: n for level, n in conn.execute(text("SELECT level, count(*) FROM regions GROUP BY level"))},
        cells=conn.execute(text("SELECT count(*) FROM grid_cells WHERE valid_to IS NULL")).scalar_one(),
        districts=list(conn.execute(text(DISTRICTS)).mappings().all()),
        units=list(conn.execute(text("SELECT kind, count(*) FROM units GROUP BY kind ORDER BY kind")).all()),
        people=list(conn.execute(text("SELECT role, count(*) FROM people GROUP BY role ORDER BY role")).all()),
        layer_counts=[
            (layer, conn.execute(text(f"SELECT count(*) FROM {layer.table.name}")).scalar_one()) for layer in layers()
        ],
    )
