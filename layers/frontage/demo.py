"""Demo data: shops along the demo's roads, each with a 门前三包 contract and a few inspections.

The frontages are cut from the roads standing now (asked through
gridmgr.plugins.area, never by importing the roads layer): short stretches of a secondary or branch
road, set back to one side of its centre line, in SQL. The shops' names, dates and inspections come
from the demo's seed, so a demo is the same every time.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.demo.city import METRIC_CRS
from gridmgr.errors import NotFound
from gridmgr.io.tabular import write_template_csv
from gridmgr.layers.frontage.contracts import CONTRACTS, DUTIES, INSPECTIONS
from gridmgr.plugins.area import features_at_sql
from gridmgr.plugins.hooks import DemoContext, DemoData

SHOPS = {"test": 30, "demo": 400}  # one seed's district kept 5,200; the demo keeps its busiest streets' shops
SLOT_M, FRONTAGE_M, SETBACK_M = 20.0, 14.0, 12.0  # a shop every 20 m of kerb, 14 m wide, 12 m off the centre line
TERM_DAYS = 3 * 365  # a three-year term
TZ = ZoneInfo("Asia/Shanghai")

_KINDS = (
    "便利店",
    "面馆",
    "理发店",
    "五金店",
    "药店",
    "水果店",
    "烟酒店",
    "早点铺",
    "干洗店",
    "文具店",
    "茶叶店",
    "餐馆",
)
_MARKS = ("福来", "鑫隆", "老北京", "顺心", "金桥", "和平", "兴旺", "惠民", "宏达", "春风", "四季", "东城")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
_GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "桂兰",
    "建华",
)
_INSPECTORS = ("城管执法队员 刘洋", "城管执法队员 陈静", "网格监督员 赵磊", "网格监督员 孙丽")
_NOTES = {"orderly": "店外摆放商品", "clean": "门前有垃圾未清扫", "tidy": "门前堆放杂物", "green": "树池缺株未补植"}


def _frontages(conn: Connection, ctx: DemoContext) -> list[dict[str, Any]]:
    """Frontage lines cut from the roads standing on the demo's day, the demo's size of them (SQL)."""
    try:
        roads = features_at_sql("roads")
    except NotFound:
        return []  # no roads layer installed: no street to face
    sql = f"""
        WITH r AS ({roads}),
        road AS (
            SELECT r.road_no, r.name, ST_Transform(r.geom, :srid) AS g FROM r
            WHERE r.grade IN ('secondary', 'branch') AND ST_CoveredBy(r.geom, ST_GeomFromText(:district, 4326))
        ),
        slot AS (
            SELECT road.*, k, ST_Length(g) AS len, CASE WHEN hashtext(:seed || road_no || k) % 2 = 0 THEN 1 ELSE -1 END AS side
            FROM road, generate_series(0, floor(ST_Length(g) / :slot)::int - 1) AS k
        ),
        picked AS (SELECT * FROM slot ORDER BY hashtext(:seed || '-' || road_no || '-' || k), road_no, k LIMIT :n)
        SELECT road_no, name, k, side,
               ST_AsText(ST_Transform(ST_OffsetCurve(
                   ST_LineSubstring(g, (k * :slot + (:slot - :width) / 2) / len, (k * :slot + (:slot + :width) / 2) / len),
                   side * :setback), 4326)) AS wkt
        FROM picked ORDER BY road_no, k, side
    """
    params = {
        "srid": int(METRIC_CRS.split(":")[1]),
        "district": ctx.district.wkt,
        "seed": str(ctx.seed),
        "slot": SLOT_M,
        "width": FRONTAGE_M,
        "setback": SETBACK_M,
        "n": SHOPS[ctx.size],
        # the roads as they stand now: the demo imported them a moment ago, whatever its own day is
        "at": datetime.now(timezone.utc),
    }
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def _contracts(conn: Connection, ctx: DemoContext) -> list[dict[str, Any]]:
    rng = random.Random(f"{ctx.seed}-frontage")
    rows = []
    for i, f in enumerate(_frontages(conn, ctx), start=1):
        signed = ctx.anchor - timedelta(days=rng.randint(30, 1150))  # about one in twenty has run out
        number = 2 * f["k"] + (1 if f["side"] > 0 else 2)  # odd numbers on one side of the road, even on the other
        rows.append(
            {
                "contract_no": f"MQSB-{ctx.anchor.year}-{i:05d}",
                "shop_name": f"{rng.choice(_MARKS)}{rng.choice(_KINDS)}",
                "licence_no": f"92110101MA{rng.randrange(10**7):07d}X",
                "owner": rng.choice(_SURNAMES) + rng.choice(_GIVEN),
                "owner_phone": f"13{rng.randrange(10**9):09d}",
                "address": f"{f['name']}{number}号",
                "road": f["name"],
                "package": "four" if rng.random() < 0.3 else "three",
                "signed_on": signed,
                "valid_until": signed + timedelta(days=TERM_DAYS),
                "status": "terminated" if rng.random() < 0.03 else "active",
                "wkt": f["wkt"],
            }
        )
    return rows


def _inspections(contracts: list[dict[str, Any]], ctx: DemoContext) -> list[dict[str, Any]]:
    """Up to three inspections a contract in the last four months; about one in twelve finds a duty neglected."""
    rng = random.Random(f"{ctx.seed}-frontage-inspections")
    rows = []
    for c in contracts:
        if c["status"] != "active":
            continue
        for _ in range(rng.randint(0, 3)):
            day = ctx.anchor - timedelta(days=rng.randint(1, 120))
            at = datetime.combine(day, time(rng.randint(9, 16), rng.choice((0, 15, 30, 45))), tzinfo=TZ)
            checked = [d for d in DUTIES if d != "green" or c["package"] == "four"]
            failed = (
                rng.choice(("orderly", "orderly", "orderly", "clean", "tidy", "green")) if rng.random() < 0.08 else None
            )
            failed = failed if failed in checked else None
            rows.append(
                {
                    "inspection_no": f"MQJC-{len(rows) + 1:06d}",
                    "contract_no": c["contract_no"],
                    "inspected_at": at.isoformat(),
                    "inspector": rng.choice(_INSPECTORS),
                    **{d: (d != failed) if d in checked else None for d in DUTIES},
                    "photo": "",
                    "note": _NOTES[failed] if failed else "",
                }
            )
    return sorted(rows, key=lambda r: (r["inspected_at"], r["inspection_no"]))


def _rows(conn: Connection, ctx: DemoContext) -> dict[str, list[dict[str, Any]]]:
    if __name__ not in ctx.cache:  # both files come from the same contracts
        contracts = _contracts(conn, ctx)
        ctx.cache[__name__] = {"contracts": contracts, "inspections": _inspections(contracts, ctx)}
    return ctx.cache[__name__]


def _make_contracts(conn: Connection, ctx: DemoContext) -> Path:
    return write_template_csv(
        ctx.workdir / "layers" / "frontage.csv", CONTRACTS, _rows(conn, ctx)["contracts"], ("wkt",)
    )


def _make_inspections(conn: Connection, ctx: DemoContext) -> Path:
    return write_template_csv(
        ctx.workdir / "layers" / "frontage_inspections.csv", INSPECTIONS, _rows(conn, ctx)["inspections"], ()
    )


DEMO = (
    DemoData(CONTRACTS.name, _make_contracts, after=("roads",)),
    DemoData(INSPECTIONS.name, _make_inspections, after=(CONTRACTS.name,)),
)
