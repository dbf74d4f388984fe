"""门前三包 frontage contracts: a shop, the stretch of road it faces, its duties, and the inspections of them.

Under a 门前三包 (or 四包) contract a shop along a street keeps the public space in front of it: its
appearance (市容整洁), its cleanliness (环境卫生) and its order (秩序规范: nothing sold or piled outside the
door), and under a 四包 contract its greenery (绿化) too. The frontage is kept as a line along the road
the shop faces, so it lies in the cells it runs through. Inspections record each duty kept or not.
"""

from __future__ import annotations

from sqlalchemy import UniqueConstraint

from gridmgr.plugins.features import feature_table, record_table
from gridmgr.plugins.hooks import CodeList
from gridmgr.plugins.registry import Field, Layer, Metric

PACKAGE = CodeList(
    "frontage_package",
    {"three": ("门前三包", "three duties"), "four": ("门前四包", "four duties (with greenery)")},
)
STATUS = CodeList(
    "frontage_status",
    {"active": ("有效", "in force"), "terminated": ("已终止", "terminated")},
)
# the duties an inspection checks, in the order a contract lists them (绿化 only under 四包)
DUTY = CodeList(
    "frontage_duty",
    {
        "tidy": ("市容整洁", "tidy frontage"),
        "clean": ("环境卫生", "clean frontage"),
        "orderly": ("秩序规范", "orderly frontage"),
        "green": ("绿化", "greenery kept"),
    },
)
DUTIES = DUTY.keys
FLAGS = CodeList("frontage_flag", {"contract_expired": ("责任书过期", "contract expired")})

CONTRACT_FIELDS = (
    Field(
        "contract_no",
        "text",
        "责任书编号",
        "contract number",
        required=True,
        max_length=40,
        aliases=("责任书编号", "编号"),
        popup=True,
        tile=True,
    ),
    Field(
        "shop_name", "text", "商户名称", "shop", required=True, max_length=200, aliases=("商户名称", "店名"), popup=True
    ),
    Field(
        "licence_no",
        "text",
        "营业执照号",
        "business licence",
        max_length=64,
        aliases=("营业执照号", "统一社会信用代码"),
    ),
    Field("owner", "text", "责任人", "responsible person", max_length=100, aliases=("责任人", "负责人")),
    Field("owner_phone", "text", "联系电话", "phone", max_length=32, aliases=("联系电话",)),
    Field("address", "text", "地址", "address", max_length=300, aliases=("地址", "门牌地址"), popup=True),
    Field("road", "text", "临街道路", "road faced", max_length=200, aliases=("临街道路", "道路名称"), popup=True),
    Field(
        "package",
        "choice",
        "责任类型",
        "duties",
        choices=PACKAGE.keys,
        default="three",
        labels="frontage_package",
        aliases=("责任类型", "包干类型"),
        popup=True,
        tile=True,
    ),
    Field("signed_on", "date", "签订日期", "signed on", aliases=("签订日期",)),
    Field(
        "valid_until", "date", "有效期至", "valid until", required=True, aliases=("有效期至", "截止日期"), popup=True
    ),
    Field(
        "status",
        "choice",
        "状态",
        "status",
        choices=STATUS.keys,
        default="active",
        labels="frontage_status",
        aliases=("状态",),
        popup=True,
        tile=True,
    ),
)

contracts = feature_table("frontage_contracts", "LINESTRING", CONTRACT_FIELDS, UniqueConstraint("contract_no"))


def expired_sql(alias: str = "f") -> str:
    """SQL: the contract `alias` is still in force but its term ended before `:today`."""
    return f"({alias}.status = 'active' AND {alias}.valid_until < CAST(:today AS date))"


# the map flags such a contract, a report counts them, the rule raises a case for each
EXPIRED_SQL = expired_sql()

CONTRACTS = Layer(
    name="frontage",
    title_zh="门前三包",
    title_en="frontage contracts",
    table=contracts,
    geometry_types=("LINESTRING",),
    fields=CONTRACT_FIELDS,
    natural_key="contract_no",
    shares=True,
    style={"color": "#0d9488", "weight": 4, "by_status": {"terminated": "#9ca3af"}},
    metrics=(
        Metric(
            "frontage_contracts", "门前三包商户", "frontage contracts", "count(*) FILTER (WHERE f.status = 'active')"
        ),
        Metric(
            "frontage_expired",
            "责任书过期",
            "expired contracts",
            f"count(*) FILTER (WHERE {EXPIRED_SQL})",
        ),
        Metric(
            "frontage_length_m",
            "包干长度(米)",
            "frontage length (m)",
            "coalesce(sum(ST_Length(f.geom::geography)) FILTER (WHERE f.status = 'active'), 0)",
        ),
    ),
    derived={"contract_expired": EXPIRED_SQL},
)

DUTY_FIELDS = tuple(Field(d, "bool", zh, en, aliases=(zh,)) for d, (zh, en) in DUTY.labels.items())

# an inspection passes when no duty was found neglected (NULL = not checked, e.g. greenery under 三包)
PASSED_SQL = " AND ".join(f"f.{d} IS NOT FALSE" for d in DUTIES)

INSPECTION_FIELDS = (
    Field(
        "inspection_no", "text", "检查编号", "inspection number", required=True, max_length=40, aliases=("检查编号",)
    ),
    Field(
        "contract_no",
        "ref",
        "责任书编号",
        "contract number",
        required=True,
        ref=("frontage_contracts", "contract_no", "contract_id"),
        aliases=("责任书编号",),
    ),
    Field("inspected_at", "datetime", "检查时间", "inspected at", required=True, aliases=("检查时间",)),
    Field("inspector", "text", "检查人", "inspector", required=True, max_length=100, aliases=("检查人",)),
    *DUTY_FIELDS,
    Field("photo", "text", "照片", "photo", max_length=500, aliases=("照片", "照片地址")),
    Field("note", "text", "备注", "note", max_length=2000, aliases=("备注",)),
)

inspections = record_table("frontage_inspections", INSPECTION_FIELDS, UniqueConstraint("inspection_no"))

INSPECTIONS = Layer(
    name="frontage_inspections",
    title_zh="门前三包检查",
    title_en="frontage inspections",
    table=inspections,
    geometry_types=(),
    fields=INSPECTION_FIELDS,
    natural_key="inspection_no",
    time_column="inspected_at",
    derived={"passed": PASSED_SQL},
)
