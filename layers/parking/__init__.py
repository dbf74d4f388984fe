"""Parking (停车): zones drawn as kerb lines or lots, and the spaces painted in them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, UniqueConstraint

from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import CodeList, MenuEntry, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

# the code lists (keys as the CHECK constraints of migration 0002 hold them) and their labels
STATUS = CodeList(
    "parking_status",
    {
        "draft": ("草稿", "draft"),
        "submitted": ("已提交", "submitted"),
        "approved": ("已批准", "approved"),
        "painted": ("已施划", "painted"),
        "retired": ("已撤销", "retired"),
    },
)
ANGLE = CodeList(
    "parking_angle",
    {
        "parallel": ("平行式", "parallel"),
        "perpendicular": ("垂直式", "perpendicular"),
        "angled_30": ("斜列式30°", "angled 30°"),
        "angled_45": ("斜列式45°", "angled 45°"),
        "angled_60": ("斜列式60°", "angled 60°"),
    },
)
SIDE = CodeList(
    "street_side",
    {
        "north": ("北侧", "north side"),
        "south": ("南侧", "south side"),
        "east": ("东侧", "east side"),
        "west": ("西侧", "west side"),
        "both": ("两侧", "both sides"),
    },
)
SPACE_TYPE = CodeList(
    "space_type",
    {
        "standard": ("普通泊位", "standard"),
        "disabled": ("无障碍泊位", "accessible"),
        "ev_charging": ("充电泊位", "EV charging"),
        "loading": ("装卸泊位", "loading"),
        "motorcycle": ("摩托车泊位", "motorcycle"),
    },
)
PARKING_STATUSES, PARKING_ANGLES, STREET_SIDES, SPACE_TYPES = STATUS.keys, ANGLE.keys, SIDE.keys, SPACE_TYPE.keys

# metres of kerb per stall by parking angle (docs/domain.md §7): 6.0 m parallel; 2.5 m perpendicular;
# angled stalls keep 2.5 m perpendicular spacing, so 2.5 / sin(angle) along the kerb
KERB_PER_STALL = {"parallel": 6.0, "perpendicular": 2.5, "angled_30": 5.0, "angled_45": 3.54, "angled_60": 2.89}
LOT_M2_PER_STALL = 25.0  # a surface lot, aisles included
# measured sizes carry noise (50 m comes back as 49.9999999983 m; a 50 m square drawn in degrees as
# 2499.992 m² on the ellipsoid): floor with a relative margin, 0.5 mm in 50 m, 0.025 m² in 2,500 m²
MARGIN = 1e-5


def estimate_capacity(angle: str, length_m: float = 0.0, area_m2: float = 0.0) -> int:
    """Stalls in a kerb line of usable length (by angle) or in a lot of some area (docs/domain.md §7)."""
    if area_m2:
        return int(area_m2 * (1 + MARGIN) // LOT_M2_PER_STALL)
    return int(length_m * (1 + MARGIN) // KERB_PER_STALL[angle])


def capacity_sql(geom: str, angle: str) -> str:
    """The same estimate in SQL, measured on the ground (geography), for staged rows."""
    per_stall = " ".join(f"WHEN '{k}' THEN {v}" for k, v in KERB_PER_STALL.items())
    return (
        f"(CASE WHEN ST_Dimension({geom}) = 2 THEN floor(ST_Area({geom}::geography) * {1 + MARGIN} / {LOT_M2_PER_STALL})"
        f" ELSE floor(ST_Length({geom}::geography) * {1 + MARGIN} / (CASE {angle} {per_stall} END)) END)::int"
    )


ZONE_FIELDS = (
    Field(
        "zone_no",
        "text",
        "停车区编号",
        "zone number",
        required=True,
        max_length=32,
        aliases=("编号", "停车区编号", "curb_zone_id"),
        popup=True,
        tile=True,
    ),
    Field("name", "text", "名称", "name", required=True, max_length=200, aliases=("名称",), popup=True),
    Field("street_name", "text", "道路", "street", max_length=200, aliases=("道路", "道路名称"), popup=True),
    Field("street_side", "choice", "道路侧", "street side", choices=STREET_SIDES, aliases=("道路侧",)),
    Field(
        "parking_angle",
        "choice",
        "停放方式",
        "parking angle",
        required=True,
        choices=PARKING_ANGLES,
        aliases=("停放方式",),
        popup=True,
    ),
    Field("capacity", "int", "泊位数", "capacity", minimum=0, aliases=("泊位数", "num_spaces"), popup=True),
    Field("capacity_reason", "text", "泊位数调整理由", "capacity reason", max_length=500),
    Field("fee_rule", "text", "收费规则", "fee rule", max_length=500, aliases=("收费规则",)),
    Field("time_rules", "text", "时段规则", "time rules", max_length=500, aliases=("时段规则",)),
    Field(
        "status",
        "choice",
        "状态",
        "status",
        choices=PARKING_STATUSES,
        default="draft",
        aliases=("状态",),
        popup=True,
        tile=True,
    ),
    Field("valid_from", "date", "生效日期", "valid from", aliases=("生效日期", "start_date")),
    Field("valid_to", "date", "失效日期", "valid to", aliases=("失效日期", "end_date")),
)

zones_table = feature_table(
    "parking_zones",
    "GEOMETRY",
    ZONE_FIELDS,
    Column("length_m", Float),
    Column("area_m2", Float),
    Column("capacity_estimated", Integer, nullable=False),
    # a geometry change after approval makes a new zone and keeps this one as history (CDS)
    Column("prev_zone_id", BigInteger, ForeignKey("parking_zones.id")),
    UniqueConstraint("zone_no"),
    allowed=("LINESTRING", "POLYGON"),
)

ZONES = Layer(
    name="parking_zones",
    title_zh="停车区",
    title_en="parking zones",
    table=zones_table,
    geometry_types=("LINESTRING", "POLYGON"),
    fields=ZONE_FIELDS,
    natural_key="zone_no",
    shares=True,
    computed={
        "length_m": "CASE WHEN ST_Dimension(s.geom) = 1 THEN ST_Length(s.geom::geography) END",
        "area_m2": "CASE WHEN ST_Dimension(s.geom) = 2 THEN ST_Area(s.geom::geography) END",
        "capacity_estimated": capacity_sql("s.geom", "s.parking_angle"),
        "capacity": f"COALESCE(s.capacity, {capacity_sql('s.geom', 's.parking_angle')})",
    },
    style={
        "color": "#2563eb",
        "weight": 4,
        "by_status": {
            "draft": "#94a3b8",
            "submitted": "#f59e0b",
            "approved": "#2563eb",
            "painted": "#1d4ed8",
            "retired": "#6b7280",
        },
    },
    metrics=(
        Metric(
            "parking_zones",
            "停车区",
            "parking zones",
            "count(*) FILTER (WHERE f.status IN ('approved', 'painted'))",
        ),
        Metric(
            "parking_capacity",
            "泊位容量",
            "parking capacity",
            "coalesce(sum(f.capacity) FILTER (WHERE f.status IN ('approved', 'painted')), 0)",
        ),
    ),
)

SPACE_FIELDS = (
    Field(
        "space_no",
        "text",
        "泊位编号",
        "space number",
        required=True,
        max_length=40,
        aliases=("泊位编号",),
        popup=True,
        tile=True,
    ),
    Field(
        "zone_no",
        "ref",
        "停车区编号",
        "zone number",
        required=True,
        ref=("parking_zones", "zone_no", "zone_id"),
        aliases=("停车区编号",),
        popup=True,
    ),
    Field(
        "type",
        "choice",
        "泊位类型",
        "space type",
        choices=SPACE_TYPES,
        default="standard",
        aliases=("泊位类型",),
        popup=True,
    ),
)

spaces_table = feature_table(
    "parking_spaces",
    "GEOMETRY",
    SPACE_FIELDS,
    UniqueConstraint("space_no"),
    allowed=("POINT", "POLYGON"),
)

SPACES = Layer(
    name="parking_spaces",
    title_zh="停车泊位",
    title_en="parking spaces",
    table=spaces_table,
    geometry_types=("POINT", "POLYGON"),
    fields=SPACE_FIELDS,
    natural_key="space_no",
    style={"radius": 3, "color": "#0ea5e9"},
    metrics=(Metric("parking_spaces", "泊位", "parking spaces", "count(*)"),),
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This module's layers."""
    return [ZONES, SPACES]


@hookimpl
def gridmgr_code_lists() -> list[CodeList]:
    """Its fields' code lists."""
    return [STATUS, ANGLE, SIDE, SPACE_TYPE]


@hookimpl
def gridmgr_blueprints() -> list:
    """The planner's pages, its parking API and the CDS feed (imported late: the web app needs Flask)."""
    from gridmgr.layers.parking.views import bp

    return [bp]


@hookimpl
def gridmgr_append_only_tables() -> list[str]:
    """The zones' change log (its trigger refuses changes; the app role is not even granted them)."""
    return ["parking_zone_events"]


@hookimpl
def gridmgr_menu() -> list[MenuEntry]:
    """The planner in the menu, after the cases."""
    return [MenuEntry("planner.index", "停车规划", "Parking", ("planner", "leader", "sysadmin"), after="cases.queue")]


# the planner's modules: the zones' event log joins the shared metadata with the layer
from gridmgr.layers.parking import zones  # noqa: E402, F401
