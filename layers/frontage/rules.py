"""The rules that open cases from frontage data: a failed inspection (→ 0504) and an expired contract (→ 0599).

Both raise their case on the contract, so case_origins holds at most one open case per contract and
rule. A failed inspection raises again only when an inspection after the last case it raised fails
too: closing the case and inspecting again is how a shop gets a clean record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from gridmgr.cases.rules import Rule, not_raised
from gridmgr.layers.frontage.contracts import CONTRACTS, DUTIES, DUTY, INSPECTIONS, PASSED_SQL, expired_sql

# a case's point: the middle of the frontage, which lies in the cell that keeps most of it
_POINT = "CROSS JOIN LATERAL (SELECT ST_LineInterpolatePoint(c.geom, 0.5) AS g) p"


def _shop(row: RowMapping) -> str:
    parts = [f"{CONTRACTS.field(k).label_zh} {row[k]}" for k in ("shop_name", "contract_no", "road") if row[k]]
    return "，".join(parts)


def _failed_sql(rule: Rule) -> str:
    duties = ", ".join(f"f.{d}" for d in DUTIES)
    return f"""
        SELECT c.id AS feature_id, ST_X(p.g) AS lon, ST_Y(p.g) AS lat, coalesce(c.address, c.shop_name) AS address,
               c.contract_no, c.shop_name, c.road, f.inspection_no, f.inspected_at, f.inspector, f.note, {duties}
        FROM frontage_contracts c
        CROSS JOIN LATERAL (
            SELECT * FROM frontage_inspections f
            WHERE f.contract_id = c.id AND f.inspected_at <= CAST(:now AS timestamptz)
            ORDER BY f.inspected_at DESC, f.id DESC LIMIT 1
        ) f
        {_POINT}
        WHERE c.status = 'active' AND NOT ({PASSED_SQL}) AND {not_raised(rule, "c")}
          AND f.inspected_at > coalesce(
              (SELECT max(o.opened_at) FROM case_origins o
               WHERE o.rule = :rule AND o.layer = :layer AND o.feature_id = c.id),
              CAST('-infinity' AS timestamptz))
        ORDER BY c.id
    """


def neglected(row: RowMapping | dict) -> list[str]:
    """The duties an inspection found neglected (False; NULL means not checked), in the contract's order."""
    return [d for d in DUTIES if row[d] is False]


def _describe_failed(row: RowMapping, params: dict[str, Any]) -> str:
    at = row["inspected_at"].astimezone(params["tz"]).strftime("%Y-%m-%d %H:%M")
    label = INSPECTIONS.field
    text = (
        f"门前三包检查不合格：{_shop(row)}；{label('inspection_no').label_zh} {row['inspection_no']}，"
        f"{label('inspected_at').label_zh} {at}，{label('inspector').label_zh} {row['inspector']}；"
        f"未落实：{'、'.join(DUTY.labels[d][0] for d in neglected(row))}。"
    )
    if row["note"]:
        text += f"{label('note').label_zh}：{row['note']}"
    return text


def _expired_sql(rule: Rule) -> str:
    return f"""
        SELECT c.id AS feature_id, ST_X(p.g) AS lon, ST_Y(p.g) AS lat, coalesce(c.address, c.shop_name) AS address,
               c.contract_no, c.shop_name, c.road, c.valid_until
        FROM frontage_contracts c
        {_POINT}
        WHERE {expired_sql("c")} AND {not_raised(rule, "c")}
        ORDER BY c.id
    """


def _describe_expired(row: RowMapping, params: dict[str, Any]) -> str:
    days = (params["today"] - row["valid_until"]).days
    return (
        f"门前三包责任书已过期：{_shop(row)}；{CONTRACTS.field('valid_until').label_zh} {row['valid_until']}，"
        f"已过期 {days} 天。请督促商户续签责任书。"
    )


RULES = (
    Rule(
        "frontage_inspection_failed",
        "门前三包检查不合格",
        "frontage inspection failed",
        CONTRACTS.name,
        "0504",
        _failed_sql,
        _describe_failed,
    ),
    Rule(
        "frontage_contract_expired",
        "门前三包责任书过期",
        "frontage contract expired",
        CONTRACTS.name,
        "0599",
        _expired_sql,
        _describe_expired,
    ),
)
