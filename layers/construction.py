"""Construction sites (在建工地) with the dust-control checklist (六个百分之百) and their inspections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    UniqueConstraint,
)
from sqlalchemy.engine import RowMapping

from gridmgr.cases.rules import Rule, not_raised
from gridmgr.plugins.features import feature_table, record_table
from gridmgr.plugins.hooks import CodeList, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

# the code lists (keys as the CHECK constraints of migration 0002 hold them) and their labels
STATUS = CodeList(
    "site_status",
    {
        "planned": ("计划", "planned"),
        "active": ("在建", "active"),
        "suspended": ("停工", "suspended"),
        "finished": ("完工", "finished"),
    },
)
# 六个百分之百: the six dust-control items of a construction site
DUST = CodeList(
    "dust_item",
    {
        "hoarding": ("围挡", "hoarding"),
        "covering": ("物料覆盖", "covered materials"),
        "washing": ("车辆冲洗", "vehicle washing"),
        "hardening": ("地面硬化", "hardened ground"),
        "wet_work": ("湿法作业", "wet work"),
        "closed_transport": ("渣土密闭运输", "closed muck transport"),
    },
)
SITE_STATUSES, DUST_ITEMS = STATUS.keys, DUST.keys

CHECKLIST = tuple(
    Field(item, "bool", zh_, item.replace("_", " "), aliases=(zh_,)) for item, (zh_, _) in DUST.labels.items()
)

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

# an inspection passes when no checklist item failed (NULL = not checked)
PASSED_SQL = " AND ".join(f"f.{i} IS NOT FALSE" for i in DUST_ITEMS)

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

inspections = record_table("site_inspections", INSPECTION_FIELDS, UniqueConstraint("inspection_no"))

INSPECTIONS = Layer(
    name="site_inspections",
    title_zh="工地巡查",
    title_en="site inspections",
    table=inspections,
    geometry_types=(),
    fields=INSPECTION_FIELDS,
    natural_key="inspection_no",
    time_column="inspected_at",
    derived={"passed": PASSED_SQL},
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This module's layers."""
    return [SITES, INSPECTIONS]


@hookimpl
def gridmgr_code_lists() -> list[CodeList]:
    """Its fields' code lists."""
    return [STATUS, DUST]


# ------------------------------------------------------------------------------------- its rules


def _dust_sql(rule: Rule) -> str:
    items = ", ".join(f"f.{item}" for item in DUST_ITEMS)
    return f"""
        SELECT f.id AS feature_id, ST_X(p.g) AS lon, ST_Y(p.g) AS lat, s.project_name AS address,
               s.permit_no, s.project_name, s.builder, f.inspection_no, f.inspected_at, f.inspector, f.note, {items}
        FROM site_inspections f
        JOIN construction_sites s ON s.id = f.site_id
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(s.geom) AS g) p
        WHERE NOT ({PASSED_SQL}) AND f.inspected_at <= CAST(:now AS timestamptz)
          AND {not_raised(rule, "f")}
        ORDER BY f.inspected_at, f.id
    """


def failed_items(row: RowMapping | dict) -> list[str]:
    """The dust-control items an inspection failed (False; NULL means not checked), in checklist order."""
    return [item for item in DUST_ITEMS if row[item] is False]


def _describe_dust(row: RowMapping, params: dict[str, Any]) -> str:
    site = "，".join(f"{SITES.field(k).label_zh} {row[k]}" for k in ("permit_no", "project_name", "builder") if row[k])
    at = row["inspected_at"].astimezone(params["tz"]).strftime("%Y-%m-%d %H:%M")
    text_ = (
        f"工地扬尘防治检查不合格：{site}；{INSPECTIONS.field('inspection_no').label_zh} {row['inspection_no']}，"
        f"{INSPECTIONS.field('inspected_at').label_zh} {at}，{INSPECTIONS.field('inspector').label_zh} "
        f"{row['inspector']}；不合格项：{'、'.join(DUST.labels[i][0] for i in failed_items(row))}。"
    )
    if row["note"]:
        text_ += f"{INSPECTIONS.field('note').label_zh}：{row['note']}"
    return text_


DUST_RULE = Rule(
    "site_dust_failed",
    "工地扬尘检查不合格",
    "site failed a dust-control item",
    "site_inspections",
    "0302",
    _dust_sql,
    _describe_dust,
    once=True,
)


@hookimpl
def gridmgr_rules() -> list[Rule]:
    """A failed dust-control inspection (→ 0302, once per inspection)."""
    return [DUST_RULE]


@hookimpl
def gridmgr_features_at(layer: str) -> str | None:
    """A site stands while its status is active (the register keeps the current status, not its history)."""
    return "SELECT * FROM construction_sites f WHERE f.status = 'active'" if layer == SITES.name else None
