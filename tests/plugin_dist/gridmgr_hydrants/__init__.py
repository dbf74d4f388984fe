"""Fire hydrants (消火栓): a layer from another distribution, with its own table and migration branch."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import UniqueConstraint

from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import CodeList, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

STATUS = CodeList("hydrant_status", {"working": ("完好", "working"), "broken": ("损坏", "broken")})

FIELDS = (
    Field("hydrant_no", "text", "消火栓编号", "hydrant number", required=True, max_length=32, aliases=("编号",)),
    Field("status", "choice", "状态", "status", choices=STATUS.keys, default="working", labels="hydrant_status"),
)

TABLE = feature_table("hydrants", "POINT", FIELDS, UniqueConstraint("hydrant_no"))

LAYER = Layer(
    name="hydrants",
    title_zh="消火栓",
    title_en="fire hydrants",
    table=TABLE,
    geometry_types=("POINT",),
    fields=FIELDS,
    natural_key="hydrant_no",
    style={"radius": 4, "color": "#b91c1c"},
    metrics=(
        Metric("broken_hydrants", "损坏消火栓", "broken hydrants", "count(*) FILTER (WHERE f.status = 'broken')"),
    ),
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This distribution's layer."""
    return [LAYER]


@hookimpl
def gridmgr_code_lists() -> list[CodeList]:
    """Its status list."""
    return [STATUS]


@hookimpl
def gridmgr_migrations() -> list[Path]:
    """Its migration branch."""
    return [Path(__file__).parent / "versions"]
