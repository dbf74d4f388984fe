"""Outdoor advertising (户外广告): billboards with permits; *expired* is derived from the date, never stored."""

from __future__ import annotations

from sqlalchemy import UniqueConstraint

from gridmgr.codes import BILLBOARD_CARRIERS, BILLBOARD_STATUSES, BILLBOARD_TYPES
from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

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
    Field("carrier", "choice", "载体", "carrier", choices=BILLBOARD_CARRIERS, aliases=("载体",)),
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
