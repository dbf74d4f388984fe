"""Construction sites (在建工地) with the dust-control checklist (六个百分之百) and their inspections."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Table,
    UniqueConstraint,
    func,
)

from gridmgr.codes import DUST_ITEMS, SITE_STATUSES
from gridmgr.db.models import Base
from gridmgr.glossary import zh
from gridmgr.plugins.features import feature_table, field_columns
from gridmgr.plugins.hooks import hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

CHECKLIST = tuple(Field(item, "bool", zh(item), item.replace("_", " "), aliases=(zh(item),)) for item in DUST_ITEMS)

SITE_FIELDS = (
    Field(
        "permit_no",
        "text",
        "施工许可证号",
        "permit number",
        required=True,
        max_length=64,
        aliases=("施工许可证号", "许可证号"),
        popup=True,
        tile=True,
    ),
    Field(
        "project_name", "text", "项目名称", "project", required=True, max_length=300, aliases=("项目名称",), popup=True
    ),
    Field("builder", "text", "施工单位", "builder", max_length=300, aliases=("施工单位",), popup=True),
    Field("manager", "text", "负责人", "responsible person", max_length=100, aliases=("负责人",), popup=True),
    Field("manager_phone", "text", "联系电话", "phone", max_length=32, aliases=("联系电话",), popup=True),
    Field("start_date", "date", "开工日期", "start", aliases=("开工日期",)),
    Field("planned_end", "date", "计划竣工日期", "planned end", aliases=("计划竣工日期",)),
    Field(
        "status",
        "choice",
        "状态",
        "status",
        choices=SITE_STATUSES,
        default="active",
        aliases=("状态",),
        popup=True,
        tile=True,
        labels="site_status",
    ),
    *CHECKLIST,
)

sites = feature_table("construction_sites", "MULTIPOLYGON", SITE_FIELDS, UniqueConstraint("permit_no"))

SITES = Layer(
    name="construction",
    title_zh="在建工地",
    title_en="construction sites",
    table=sites,
    geometry_types=("POLYGON", "MULTIPOLYGON"),
    fields=SITE_FIELDS,
    natural_key="permit_no",
    shares=True,
    style={"color": "#ea580c", "fill": True, "fillOpacity": 0.3},
    metrics=(Metric("active_sites", "在建工地", "active sites", "count(*) FILTER (WHERE f.status = 'active')"),),
)

INSPECTION_FIELDS = (
    Field(
        "inspection_no", "text", "巡查编号", "inspection number", required=True, max_length=40, aliases=("巡查编号",)
    ),
    Field(
        "permit_no",
        "ref",
        "施工许可证号",
        "site permit number",
        required=True,
        ref=("construction_sites", "permit_no", "site_id"),
        aliases=("施工许可证号",),
    ),
    Field("inspected_at", "datetime", "巡查时间", "inspected at", required=True, aliases=("巡查时间",)),
    Field("inspector", "text", "巡查人", "inspector", required=True, max_length=100, aliases=("巡查人",)),
    *CHECKLIST,
    Field("note", "text", "备注", "note", max_length=2000, aliases=("备注",)),
)

inspections = Table(
    "site_inspections",
    Base.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *field_columns(INSPECTION_FIELDS),
    UniqueConstraint("inspection_no"),
)

INSPECTIONS = Layer(
    name="site_inspections",
    title_zh="工地巡查",
    title_en="site inspections",
    table=inspections,
    geometry_types=(),
    fields=INSPECTION_FIELDS,
    natural_key="inspection_no",
    time_column="inspected_at",
    # an inspection passes when no checklist item failed (NULL = not checked)
    derived={"passed": " AND ".join(f"f.{i} IS NOT FALSE" for i in DUST_ITEMS)},
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This module's layers."""
    return [SITES, INSPECTIONS]
