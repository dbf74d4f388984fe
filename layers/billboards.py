"""Outdoor advertising (户外广告): billboards with permits; *expired* is derived from the date, never stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import RowMapping

from gridmgr.cases.rules import Rule, not_raised
from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import CodeList, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

# the code lists (keys as the CHECK constraints of migration 0002 hold them) and their labels
STATUS = CodeList(
    "billboard_status",
    {"permitted": ("已许可", "permitted"), "unpermitted": ("未许可", "unpermitted"), "removed": ("已拆除", "removed")},
)
TYPE = CodeList(
    "billboard_type",
    {
        "wall": ("墙面广告", "wall sign"),
        "rooftop": ("楼顶广告", "rooftop sign"),
        "pole": ("立杆广告", "pole sign"),
        "led_screen": ("LED电子屏", "LED screen"),
        "hoarding": ("围挡广告", "hoarding"),
        "light_box": ("灯箱广告", "light box"),
        "neon": ("霓虹灯广告", "neon sign"),
        "other": ("其他", "other"),
    },
)
CARRIER = CodeList(
    "billboard_carrier",
    {
        "building": ("建筑物", "building"),
        "ground": ("地面", "ground"),
        "municipal_facility": ("市政设施", "municipal facility"),
        "shelter": ("候车亭", "bus shelter"),
        "other": ("其他", "other"),
    },
)
FLAGS = CodeList("billboard_flag", {"expired": ("许可过期", "permit expired")})
BILLBOARD_STATUSES, BILLBOARD_TYPES, BILLBOARD_CARRIERS = STATUS.keys, TYPE.keys, CARRIER.keys

INSPECTION_DAYS = 365  # a safety inspection at least once a year (docs/domain.md §8); `rules run --set days=N`
# a permitted billboard whose permit ended before `:today` (tests and reports pass today explicitly)
EXPIRED_SQL = "(f.status = 'permitted' AND f.valid_to IS NOT NULL AND f.valid_to < CAST(:today AS date))"

FIELDS = (
    Field(
        "ad_no",
        "text",
        "设施编号",
        "billboard number",
        required=True,
        max_length=40,
        aliases=("设施编号", "编号"),
        popup=True,
        tile=True,
    ),
    Field(
        "type",
        "choice",
        "类型",
        "type",
        required=True,
        choices=BILLBOARD_TYPES,
        aliases=("类型",),
        popup=True,
        labels="billboard_type",
    ),
    Field(
        "carrier",
        "choice",
        "载体",
        "carrier",
        choices=BILLBOARD_CARRIERS,
        aliases=("载体",),
        labels="billboard_carrier",
    ),
    Field("width_m", "float", "宽(米)", "width (m)", minimum=0, aliases=("宽",)),
    Field("height_m", "float", "高(米)", "height (m)", minimum=0, aliases=("高",)),
    Field(
        "height_above_ground_m", "float", "离地高度(米)", "height above ground (m)", minimum=0, aliases=("离地高度",)
    ),
    Field("illuminated", "bool", "是否发光", "illuminated", aliases=("是否发光",)),
    Field("owner", "text", "设置单位", "owner", max_length=300, aliases=("设置单位", "所有者"), popup=True),
    Field(
        "owner_credit_code",
        "text",
        "统一社会信用代码",
        "unified social credit code",
        max_length=18,
        aliases=("统一社会信用代码",),
    ),
    Field("permit_no", "text", "户外广告设置证号", "permit number", max_length=64, aliases=("许可证号",), popup=True),
    Field("address", "text", "地址", "address", max_length=300, aliases=("地址",), popup=True),
    Field("valid_from", "date", "许可起始日期", "permit valid from", aliases=("许可起始日期",)),
    Field("valid_to", "date", "许可截止日期", "permit valid to", aliases=("许可截止日期",), popup=True),
    Field("last_inspection", "date", "最近安全检查", "last safety inspection", aliases=("最近安全检查",)),
    Field(
        "status",
        "choice",
        "状态",
        "status",
        required=True,
        choices=BILLBOARD_STATUSES,
        aliases=("状态",),
        labels="billboard_status",
        popup=True,
        tile=True,
    ),
)

table = feature_table("billboards", "POINT", FIELDS, UniqueConstraint("ad_no"))

LAYER = Layer(
    name="billboards",
    title_zh="户外广告",
    title_en="billboards",
    table=table,
    geometry_types=("POINT",),
    fields=FIELDS,
    natural_key="ad_no",
    derived={"expired": EXPIRED_SQL},
    style={"radius": 4, "color": "#7c3aed", "by_status": {"unpermitted": "#dc2626", "removed": "#6b7280"}},
    metrics=(
        Metric(
            "expired_billboards",
            "许可过期广告",
            "expired billboard permits",
            f"count(*) FILTER (WHERE {EXPIRED_SQL})",
        ),
        Metric(
            "unpermitted_billboards",
            "未许可广告",
            "unpermitted billboards",
            "count(*) FILTER (WHERE f.status = 'unpermitted')",
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
    return [STATUS, TYPE, CARRIER, FLAGS]


# ------------------------------------------------------------------------------------- its rules


def _label(name: str) -> str:
    return LAYER.field(name).label_zh


def _billboard_head(row: RowMapping) -> str:
    parts = [f"{_label('ad_no')} {row['ad_no']}"]
    if row["permit_no"]:
        parts.append(f"{_label('permit_no')} {row['permit_no']}")
    if row["owner"]:
        parts.append(f"{_label('owner')} {row['owner']}")
    return "，".join(parts)


def _expired_sql(rule: Rule) -> str:
    return f"""
        SELECT f.id AS feature_id, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.address,
               f.ad_no, f.permit_no, f.owner, f.valid_from, f.valid_to
        FROM billboards f
        WHERE {EXPIRED_SQL} AND {not_raised(rule, "f")}
        ORDER BY f.id
    """


def _describe_expired(row: RowMapping, params: dict[str, Any]) -> str:
    days = (params["today"] - row["valid_to"]).days
    return (
        f"户外广告设置许可已过期：{_billboard_head(row)}；"
        f"{_label('valid_to')} {row['valid_to']}，已过期 {days} 天。请责令拆除或补办许可。"
    )


def _overdue_sql(rule: Rule) -> str:
    # never inspected counts as overdue once the permit has run for the interval (or has no start date):
    # a board permitted last week is not yet due for its first inspection
    return f"""
        SELECT f.id AS feature_id, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.address,
               f.ad_no, f.permit_no, f.owner, f.valid_from, f.last_inspection
        FROM billboards f
        WHERE f.status = 'permitted'
          AND COALESCE(f.last_inspection, f.valid_from, CAST('-infinity' AS date)) < CAST(:today AS date) - :days
          AND {not_raised(rule, "f")}
        ORDER BY f.id
    """


def _describe_overdue(row: RowMapping, params: dict[str, Any]) -> str:
    label = _label("last_inspection")
    if row["last_inspection"] is None:
        since = f"，{_label('valid_from')} {row['valid_from']}" if row["valid_from"] else ""
        when = f"无安全检查记录{since}"
    else:
        when = f"{label} {row['last_inspection']}，距今 {(params['today'] - row['last_inspection']).days} 天"
    return (
        f"户外广告安全检查超期：{_billboard_head(row)}；{when}，"
        f"超过 {params['days']} 天未检查。请督促设置单位进行安全检查。"
    )


RULES = (
    Rule(
        "billboard_permit_expired",
        "户外广告许可过期",
        "billboard permit expired",
        "billboards",
        "0202",
        _expired_sql,
        _describe_expired,
    ),
    Rule(
        "billboard_inspection_overdue",
        "户外广告安全检查超期",
        "billboard inspection overdue",
        "billboards",
        "0205",
        _overdue_sql,
        _describe_overdue,
        settings={"days": INSPECTION_DAYS},
    ),
)


@hookimpl
def gridmgr_rules() -> list[Rule]:
    """Expired permits (→ 0202) and overdue safety inspections (→ 0205)."""
    return list(RULES)
