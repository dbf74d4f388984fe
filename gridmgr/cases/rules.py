"""Layer rules (规则生成): open cases from layer data, e.g. an expired billboard permit → 0202.

Each rule finds its candidates with one SQL statement over a layer and opens one `reported` case per
candidate through `gridmgr.cases.intake.report` (source `rule`, actor SYSTEM), so every case gets its
first deadline and audit event like any other. `case_origins` records which rule raised a case from
which feature.

Idempotence. A rule never opens a second case for a feature while one it opened is still open (status
not closed or rejected). Once that case is closed or rejected and the condition still holds — the
permit is still expired in the data — the next run opens a new case: the data says the problem is
there, so either it is handled again or the data is corrected. Rules about events rather than lasting
conditions (`once`: a failed site inspection) raise at most one case per feature, ever.

The database enforces "one open case per (rule, layer, feature)", not just this module: case_origins
keeps an `open` flag, derived by trigger from the case's status (migration 0004), and a unique index
on (rule, layer, feature_id) WHERE open. Two runs at once are serialised by an advisory lock, so the
second one waits and then finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.cases.intake import MAX_DESCRIPTION, NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import SYSTEM
from gridmgr.codes import DUST_ITEMS
from gridmgr.db.models import Base
from gridmgr.errors import InputError
from gridmgr.glossary import zh
from gridmgr.plugins import registry

DEFAULT_INSPECTION_DAYS = 365  # billboard safety inspection: at least once a year (docs/domain.md §8)
# pg_advisory_xact_lock key: one rule run at a time per database
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('gridmgr.rules'))"


class CaseOrigin(Base):
    """Which rule raised a case from which feature; `open` mirrors the case's status (by trigger)."""

    __tablename__ = "case_origins"
    __table_args__ = (
        # the guarantee: at most one open case per rule and feature (see the module docstring)
        Index(
            "uq_case_origins_open_feature", "rule", "layer", "feature_id", unique=True, postgresql_where=text("open")
        ),
        Index("ix_case_origins_layer_feature_id", "layer", "feature_id"),
    )
    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cases.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(Text, nullable=False)
    layer: Mapped[str] = mapped_column(Text, nullable=False)
    feature_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # never written by hand: a trigger sets it from cases.status on insert and whenever a case closes
    open: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


@dataclass(frozen=True)
class Rule:
    """A rule: the layer it reads, the category it raises, its candidates' SQL and their description."""

    name: str
    title_zh: str
    title_en: str
    layer: str  # registry name of the features in case_origins
    category: str
    candidates: Callable[[Rule], str]  # SQL: feature_id, lon, lat, address, fields to describe
    describe: Callable[[RowMapping, dict[str, Any]], str]
    once: bool = False  # an event: one case per feature ever, not per open period


def _not_raised(rule: Rule, alias: str) -> str:
    """SQL condition: the rule has no open case (no case at all for `once` rules) for feature `alias`.id."""
    open_only = "" if rule.once else " AND o.open"
    return (
        f"NOT EXISTS (SELECT 1 FROM case_origins o WHERE o.rule = :rule AND o.layer = :layer "
        f"AND o.feature_id = {alias}.id{open_only})"
    )


def _label(layer: str, field: str) -> str:
    return registry.get(layer).field(field).label_zh


def _billboard_head(row: RowMapping) -> str:
    parts = [f"{_label('billboards', 'ad_no')} {row['ad_no']}"]
    if row["permit_no"]:
        parts.append(f"{_label('billboards', 'permit_no')} {row['permit_no']}")
    if row["owner"]:
        parts.append(f"{_label('billboards', 'owner')} {row['owner']}")
    return "，".join(parts)


def _expired_sql(rule: Rule) -> str:
    board = registry.get("billboards")
    return f"""
        SELECT f.id AS feature_id, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.address,
               f.ad_no, f.permit_no, f.owner, f.valid_from, f.valid_to
        FROM {board.table.name} f
        WHERE {board.derived["expired"]} AND {_not_raised(rule, "f")}
        ORDER BY f.id
    """


def _describe_expired(row: RowMapping, params: dict[str, Any]) -> str:
    days = (params["today"] - row["valid_to"]).days
    return (
        f"户外广告设置许可已过期：{_billboard_head(row)}；"
        f"{_label('billboards', 'valid_to')} {row['valid_to']}，已过期 {days} 天。请责令拆除或补办许可。"
    )


def _overdue_sql(rule: Rule) -> str:
    # never inspected counts as overdue once the permit has run for the interval (or has no start date):
    # a board permitted last week is not yet due for its first inspection
    board = registry.get("billboards")
    return f"""
        SELECT f.id AS feature_id, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.address,
               f.ad_no, f.permit_no, f.owner, f.valid_from, f.last_inspection
        FROM {board.table.name} f
        WHERE f.status = 'permitted'
          AND COALESCE(f.last_inspection, f.valid_from, CAST('-infinity' AS date)) < CAST(:today AS date) - :days
          AND {_not_raised(rule, "f")}
        ORDER BY f.id
    """


def _describe_overdue(row: RowMapping, params: dict[str, Any]) -> str:
    label = _label("billboards", "last_inspection")
    if row["last_inspection"] is None:
        since = f"，{_label('billboards', 'valid_from')} {row['valid_from']}" if row["valid_from"] else ""
        when = f"无安全检查记录{since}"
    else:
        when = f"{label} {row['last_inspection']}，距今 {(params['today'] - row['last_inspection']).days} 天"
    return (
        f"户外广告安全检查超期：{_billboard_head(row)}；{when}，"
        f"超过 {params['days']} 天未检查。请督促设置单位进行安全检查。"
    )


def _dust_sql(rule: Rule) -> str:
    site, insp = registry.get("construction"), registry.get("site_inspections")
    items = ", ".join(f"f.{item}" for item in DUST_ITEMS)
    return f"""
        SELECT f.id AS feature_id, ST_X(p.g) AS lon, ST_Y(p.g) AS lat, s.project_name AS address,
               s.permit_no, s.project_name, s.builder, f.inspection_no, f.inspected_at, f.inspector, f.note, {items}
        FROM {insp.table.name} f
        JOIN {site.table.name} s ON s.id = f.site_id
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(s.geom) AS g) p
        WHERE NOT ({insp.derived["passed"]}) AND f.inspected_at <= CAST(:now AS timestamptz)
          AND {_not_raised(rule, "f")}
        ORDER BY f.inspected_at, f.id
    """


def failed_items(row: RowMapping | dict) -> list[str]:
    """The dust-control items an inspection failed (False; NULL means not checked), in checklist order."""
    return [item for item in DUST_ITEMS if row[item] is False]


def _describe_dust(row: RowMapping, params: dict[str, Any]) -> str:
    site = "，".join(
        f"{_label('construction', k)} {row[k]}" for k in ("permit_no", "project_name", "builder") if row[k]
    )
    at = row["inspected_at"].astimezone(params["tz"]).strftime("%Y-%m-%d %H:%M")
    text_ = (
        f"工地扬尘防治检查不合格：{site}；{_label('site_inspections', 'inspection_no')} {row['inspection_no']}，"
        f"{_label('site_inspections', 'inspected_at')} {at}，{_label('site_inspections', 'inspector')} "
        f"{row['inspector']}；不合格项：{'、'.join(zh(i) for i in failed_items(row))}。"
    )
    if row["note"]:
        text_ += f"{_label('site_inspections', 'note')}：{row['note']}"
    return text_


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
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
        ),
        Rule(
            "site_dust_failed",
            "工地扬尘检查不合格",
            "site failed a dust-control item",
            "site_inspections",
            "0302",
            _dust_sql,
            _describe_dust,
            once=True,
        ),
    )
}


def _clip(description: str) -> str:
    return description if len(description) <= MAX_DESCRIPTION else description[: MAX_DESCRIPTION - 1] + "…"


def run_rule(
    conn: Connection,
    rule: Rule,
    *,
    today: date,
    now: datetime,
    calendar: WorkCalendar,
    inspection_days: int = DEFAULT_INSPECTION_DAYS,
) -> list[int]:
    """Open the cases one rule raises now, in the caller's transaction; returns their ids."""
    params = {
        "rule": rule.name,
        "layer": rule.layer,
        "today": today,
        "now": now,
        "days": inspection_days,
        "tz": calendar.hours.tz,
    }
    rows = conn.execute(text(rule.candidates(rule)), params).mappings().all()
    opened = []
    for row in rows:
        new = NewCase(
            rule.category,
            row["lon"],
            row["lat"],
            "rule",
            _clip(rule.describe(row, params)),
            address=row["address"] or "",
        )
        case_id = report(conn, SYSTEM, new, now=now, calendar=calendar)
        conn.execute(
            text(
                "INSERT INTO case_origins (case_id, rule, layer, feature_id, opened_at) "
                "VALUES (:c, :rule, :layer, :f, :now)"
            ),
            {"c": case_id, "rule": rule.name, "layer": rule.layer, "f": row["feature_id"], "now": now},
        )
        opened.append(case_id)
    return opened


def run_rules(
    conn: Connection,
    *,
    today: date,
    now: datetime,
    calendar: WorkCalendar,
    rules: list[str] | None = None,
    inspection_days: int = DEFAULT_INSPECTION_DAYS,
) -> dict[str, int]:
    """Run the rules (all, or those named) in the caller's transaction; returns rule → cases opened."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if inspection_days < 1:
        raise ValueError(f"inspection_days must be at least 1, got {inspection_days}")
    unknown = [r for r in rules or () if r not in RULES]
    if unknown:
        raise InputError(f"unknown rule {', '.join(unknown)}; known: {', '.join(RULES)}", field="rule")
    conn.execute(text(_LOCK))
    return {
        name: len(run_rule(conn, RULES[name], today=today, now=now, calendar=calendar, inspection_days=inspection_days))
        for name in (rules or RULES)
    }
