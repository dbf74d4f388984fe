"""Roads (道路): centre lines with their grade (道路等级) and the unit that cleans them (清扫保洁单位)."""

from __future__ import annotations

from sqlalchemy import UniqueConstraint

from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import CodeList, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

# CJJ 37-2012 城市道路工程设计规范: 快速路, 主干路, 次干路, 支路 (an import takes 主干路 for arterial)
GRADE = CodeList(
    "road_grade",
    {
        "expressway": ("快速路", "expressway"),
        "arterial": ("主干路", "arterial road"),
        "secondary": ("次干路", "secondary road"),
        "branch": ("支路", "branch road"),
    },
)
ROAD_GRADES = GRADE.keys

FIELDS = (
    Field(
        "road_no",
        "text",
        "道路编号",
        "road number",
        required=True,
        max_length=40,
        aliases=("道路编号", "编号"),
        popup=True,
        tile=True,
    ),
    Field("name", "text", "道路名称", "name", required=True, max_length=200, aliases=("道路名称", "路名"), popup=True),
    Field(
        "grade",
        "choice",
        "道路等级",
        "grade",
        required=True,
        choices=ROAD_GRADES,
        labels="road_grade",
        aliases=("道路等级", "等级"),
        popup=True,
        tile=True,
    ),
    Field(
        "cleaning_unit",
        "ref",
        "清扫保洁单位",
        "cleaning unit",
        ref=("units", "code", "cleaning_unit_id"),
        aliases=("清扫保洁单位", "保洁单位"),
        popup=True,
    ),
)

table = feature_table("roads", "LINESTRING", FIELDS, UniqueConstraint("road_no"))

LAYER = Layer(
    name="roads",
    title_zh="道路",
    title_en="roads",
    table=table,
    geometry_types=("LINESTRING",),
    fields=FIELDS,
    natural_key="road_no",
    shares=True,
    style={"color": "#64748b", "weight": 3},
    metrics=(
        Metric(
            "road_length_m",
            "道路长度(米)",
            "road length (m)",
            # by each road's primary cell: the report engine groups by f.cell_id, not by feature_cells shares
            "coalesce(sum(ST_Length(f.geom::geography)), 0)",
        ),
    ),
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This module's layer."""
    return [LAYER]


@hookimpl
def gridmgr_code_lists() -> list[CodeList]:
    """Its fields' code lists."""
    return [GRADE]
