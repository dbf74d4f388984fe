"""Cases (案件): reported problems, each a point bound to its cell; the workflow drives their state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from gridmgr.codes import CASE_SOURCES, CASE_STATES, URGENCIES, sql_in
from gridmgr.db.models import Base
from gridmgr.plugins.features import feature_table
from gridmgr.plugins.hooks import Job, hookimpl
from gridmgr.plugins.registry import Field, Layer, Metric

FIELDS = (
    # year + 7-digit sequence; given by the importer when the file has none
    Field(
        "case_no",
        "text",
        "案件编号",
        "case number",
        max_length=16,
        aliases=("案件编号", "编号"),
        popup=True,
        generated=True,
    ),
    Field(
        "category",
        "ref",
        "案件类别",
        "category",
        required=True,
        ref=("categories", "code", "category_code"),
        aliases=("类别", "类别代码", "category_code"),
        popup=True,
        tile=True,
    ),
    Field(
        "source",
        "choice",
        "来源",
        "source",
        required=True,
        choices=CASE_SOURCES,
        aliases=("来源", "案件来源"),
        popup=True,
    ),
    Field("urgency", "choice", "紧急程度", "urgency", choices=URGENCIES, default="normal", aliases=("紧急程度",)),
    Field(
        "reported_at",
        "datetime",
        "上报时间",
        "reported at",
        required=True,
        aliases=("上报时间", "发现时间"),
        popup=True,
    ),
    Field("description", "text", "问题描述", "description", max_length=2000, aliases=("问题描述", "描述"), popup=True),
    Field("address", "text", "地址", "address", max_length=300, aliases=("地址", "位置描述"), popup=True),
    Field("photos", "text[]", "照片", "photos", aliases=("照片",)),
)

case_no_seq = Sequence("case_no_seq", metadata=Base.metadata)
table = feature_table(
    "cases",
    "POINT",
    FIELDS,
    # the workflow's state (gridmgr.cases.workflow writes these, with a case_events row each time)
    Column("status", String(16), nullable=False, server_default=text("'reported'")),
    Column("deadline", DateTime(timezone=True)),
    Column("deadline_step", String(16)),  # the step the deadline is for: verify, register, …
    Column("step_started_at", DateTime(timezone=True)),  # when that step's clock started (超时倍数)
    Column("unit_id", BigInteger, ForeignKey("units.id"), index=True),
    Column("reporter_user_id", BigInteger, ForeignKey("users.id")),
    Column("self_handled", Boolean, nullable=False, server_default=text("false")),
    Column("rework_count", Integer, nullable=False, server_default=text("0")),
    Column("extension_request", JSONB),  # a pending request: limit asked for and why
    Column("resume_state", String(16)),  # where a suspended or deferred case goes back to
    CheckConstraint(sql_in("status", CASE_STATES), name="status"),
    Index("ix_cases_reported_at", "reported_at"),
    Index("ix_cases_status", "status"),
    # gridmgr.analytics.accountability (migration 0007): the recurrence probe; open cases per cell
    Index("ix_cases_cell_id_category_code_reported_at", "cell_id", "category_code", "reported_at"),
    Index("ix_cases_open_cell_id", "cell_id", postgresql_where=text("status NOT IN ('closed', 'rejected')")),
    UniqueConstraint("case_no"),
)

LAYER = Layer(
    name="cases",
    title_zh="案件",
    title_en="cases",
    table=table,
    geometry_types=("POINT",),
    fields=FIELDS,
    natural_key="case_no",
    time_column="reported_at",
    computed={
        "case_no": "COALESCE(s.case_no, to_char(s.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY')"
        " || lpad(nextval('case_no_seq')::text, 7, '0'))"
    },
    # each imported case starts its audit trail in the same statement (DESIGN.md "Case workflow")
    on_insert="INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, note) "
    "SELECT ins.id, ins.reported_at, 'report', NULL, 'reported', 'import', 'system', 'imported from a file' "
    "FROM ins",
    # new case numbers continue after the highest imported one (year + 7 digits)
    after_import=(
        "SELECT setval('case_no_seq', GREATEST((SELECT last_value FROM case_no_seq), "
        "(SELECT max(substr(case_no, 5)::bigint) FROM cases WHERE case_no ~ '^[0-9]{11}$')))",
    ),
    style={
        "radius": 5,
        "color": "#dc2626",
        "by_status": {"reported": "#f59e0b", "closed": "#16a34a", "rework": "#9333ea"},
    },
    metrics=(
        Metric(
            "open_cases", "未结案件", "open cases", "count(*) FILTER (WHERE f.status NOT IN ('closed', 'rejected'))"
        ),
    ),
)


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """This module's layer."""
    return [LAYER]


def _rules_job(conn: Connection, now: datetime) -> str:
    """Every layer's rules, judged by today in the working calendar's time zone."""
    from gridmgr.cases import categories
    from gridmgr.cases.rules import run_rules
    from gridmgr.cases.workcalendar import WorkCalendar

    calendar = WorkCalendar.load()
    categories.ensure_loaded(conn)
    local = now.astimezone(calendar.hours.tz)
    opened = run_rules(conn, today=local.date(), now=local, calendar=calendar)
    return f"{sum(opened.values()):,} cases opened (" + ", ".join(f"{k} {v}" for k, v in opened.items()) + ")"


@hookimpl
def gridmgr_jobs() -> list[Job]:
    """The layers' rules, once a day before the working day starts."""
    return [Job("rules", "图层规则", "layer rules", "daily", _rules_job, at="06:00")]
