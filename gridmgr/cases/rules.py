"""Layer rules (规则生成): open cases from layer data, e.g. an expired billboard permit → 0202.

Layers give their rules through the `gridmgr_rules` hook; this module is the engine. Each rule finds its
candidates with one SQL statement over a layer and opens one `reported` case per
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
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.cases.intake import MAX_DESCRIPTION, NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import SYSTEM
from gridmgr.db.models import Base
from gridmgr.errors import InputError
from gridmgr.plugins import hooks, registry

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
    # settings the SQL reads as parameters, with their defaults (e.g. {"days": 365}); a run may set them
    settings: dict[str, int] = field(default_factory=dict)


def not_raised(rule: Rule, alias: str) -> str:
    """SQL condition: the rule has no open case (no case at all for `once` rules) for feature `alias`.id."""
    open_only = "" if rule.once else " AND o.open"
    return (
        f"NOT EXISTS (SELECT 1 FROM case_origins o WHERE o.rule = :rule AND o.layer = :layer "
        f"AND o.feature_id = {alias}.id{open_only})"
    )


def field_label(layer: str, field: str) -> str:
    """A field's Chinese label, as rule descriptions name it."""
    return registry.get(layer).field(field).label_zh


def rules() -> dict[str, Rule]:
    """Every plug-in's rules by name (the `gridmgr_rules` hook), in the plug-ins' order."""
    found: dict[str, Rule] = {}
    for rule in hooks.gather("gridmgr_rules"):
        if rule.name in found:
            raise ValueError(f"rule {rule.name!r} is given twice")
        found[rule.name] = rule
    return found


def _clip(description: str) -> str:
    return description if len(description) <= MAX_DESCRIPTION else description[: MAX_DESCRIPTION - 1] + "…"


def run_rule(
    conn: Connection,
    rule: Rule,
    *,
    today: date,
    now: datetime,
    calendar: WorkCalendar,
    settings: dict[str, int] | None = None,
) -> list[int]:
    """Open the cases one rule raises now, in the caller's transaction; returns their ids."""
    params: dict[str, Any] = {
        **rule.settings,
        **{k: v for k, v in (settings or {}).items() if k in rule.settings},
        "rule": rule.name,
        "layer": rule.layer,
        "today": today,
        "now": now,
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
    names: list[str] | None = None,
    settings: dict[str, int] | None = None,
) -> dict[str, int]:
    """Run the rules (all, or those named) in the caller's transaction; returns rule → cases opened.

    `settings` overrides the rules' settings by name (e.g. {"days": 30}); a setting is a positive integer
    that at least one of the rules run declares.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    chosen = hooks.chosen(rules(), names, "rule")
    declared = {k for r in chosen for k in r.settings}
    for key, value in (settings or {}).items():
        if key not in declared:
            raise InputError(
                f"no rule run here has the setting {key!r}; they have: {', '.join(sorted(declared))}", field=key
            )
        if value < 1:
            raise InputError(f"setting {key} must be at least 1, got {value}", field=key)
    conn.execute(text(_LOCK))
    return {r.name: len(run_rule(conn, r, today=today, now=now, calendar=calendar, settings=settings)) for r in chosen}
