"""Reading cases for an actor: lists, one case with its events, and their plain-data form.

Framework-free, shared by the JSON API (gridmgr.web.views.api), Open311 (gridmgr.web.views.open311) and the case
pages (gridmgr.web.views.cases): callers pass a Connection, the Actor, "now" and the working calendar; nothing
here reads the clock, a request or a setting by itself. The functions below are the stable interface
(query-string values become a `CaseFilter` and a page in gridmgr.cases.filters):

- `list_cases(conn, actor, flt, now=, calendar=, page=, page_size=, sort=)` → `Page` of case dicts;
  `list_cases_json(conn, actor, flt, now=, page=, page_size=, sort=)` → the same page as the API's JSON text
  (the list's fields, `SUMMARY_FIELDS`, built by PostgreSQL) and its total;
- `get_case(conn, actor, case_id, now=, calendar=)` → one case dict with `events` and `allowed_actions`;
- `case_id_for_number(conn, case_no)`, `case_number(conn, case_id)`, `case_events(conn, case_id)`;
  `categories(conn)`, `category(conn, code)`, `unit(conn, code=|unit_id=)`;
- `cell_by_code(conn, code, at)` / `cell_at_point(conn, lon, lat, crs=, at=)` → `CellInfo`; `cell_dict(info)`;
- `timing(...)`: overdue and 超时倍数; `jsonable(value)`: datetimes → ISO 8601 text; `to_json(value)`: JSON
  text in which `<`, `>`, `&` and `'` are escaped, so user text can never be read as HTML;
- `resolve_now(setting)`: "now" of a request; `default_calendar()`: the shipped working calendar, loaded once.

Scope. Every read goes through `workflow.scope_filter`: a supervisor sees the cases in the cells of their
duty grid, a unit handler those dispatched to their unit, the other roles every case. A case outside the
actor's scope is `NotFound` with the same message as a case that does not exist, so a 404 tells nothing.

Overdue (超期) and 超时倍数 are computed here and nowhere else:
- overdue: the case waits for a step (not closed, rejected, suspended or deferred), has a deadline, and
  now > deadline. The `overdue` filter uses the same condition in SQL (`OVERDUE_SQL`).
- overtime_ratio: `WorkCalendar.overtime_ratio(step_started_at, deadline, now)`: working time used on the
  current step / working time allowed; None when the case waits for no step.
So ratio > 1 implies overdue, and overdue implies ratio >= 1 (time past the deadline outside working hours
makes a case overdue without adding working time).

"Now" in the web app: `resolve_now(app.config.get("GRIDMGR_NOW"))`, once per request. The setting is
unset in production (the request time); tests set an aware datetime, an ISO 8601 string or a callable
returning one, so deadlines and ratios are deterministic.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.filters import DEFAULT_PAGE_SIZE, DEFAULT_SORT, MAX_PAGE_SIZE, SORTS, CaseFilter, Page
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import PAUSED, TERMINAL, Actor, allowed_actions, scope_filter
from gridmgr.codes import CASE_STATES, TZ
from gridmgr.errors import InputError, NotFound
from gridmgr.glossary import en, zh
from gridmgr.grid.assign import CellInfo, describe_cell, locate

# states in which no step's clock runs: such a case is never overdue and has no 超时倍数
NOT_WAITING = (*TERMINAL, *PAUSED)
# the overdue condition in SQL (`f` = cases, `:now` = now); `timing` is the same rule in Python
OVERDUE_SQL = (
    f"(f.deadline IS NOT NULL AND :now > f.deadline AND f.status NOT IN ({', '.join(repr(s) for s in NOT_WAITING)}))"
)

NowSetting = None | str | datetime | Callable[[], datetime]


# ---------------------------------------------------------------- now and the calendar


def resolve_now(setting: NowSetting = None) -> datetime:
    """ "Now" for one request: the clock when `setting` is None, else the fixed moment it gives."""
    value = setting() if callable(setting) else setting
    if value is None:
        return datetime.now(TZ)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"GRIDMGR_NOW {value!r} is not an ISO 8601 datetime") from None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"GRIDMGR_NOW must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(TZ)


@functools.lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The shipped working calendar (data/calendar), read once per process."""
    return WorkCalendar.load()


# ---------------------------------------------------------------- timing and serialisation


def timing(
    status: str, deadline: datetime | None, step_started_at: datetime | None, *, now: datetime, calendar: WorkCalendar
) -> tuple[bool, float | None]:
    """(overdue, 超时倍数) of a case at `now` (see the module docstring for the rule)."""
    if status in NOT_WAITING or deadline is None:
        return False, None
    overdue = WorkCalendar.overdue(deadline, now)
    ratio = None
    if step_started_at is not None and now >= step_started_at:
        try:
            ratio = round(calendar.overtime_ratio(step_started_at, deadline, now), 4)
        except ValueError:  # a deadline that leaves no working time (bad data): no ratio rather than a crash
            ratio = None
    return overdue, ratio


def _local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(TZ) if moment is not None else None


def case_dict(row: Mapping[Any, Any], *, now: datetime, calendar: WorkCalendar) -> dict:
    """One case row (as selected by this module) as plain data; datetimes stay aware datetimes in Asia/Shanghai."""
    overdue, ratio = timing(row["status"], row["deadline"], row["step_started_at"], now=now, calendar=calendar)
    return {
        "id": row["id"],
        "case_no": row["case_no"],
        "status": row["status"],
        "status_label": {"zh": zh(row["status"]), "en": en(row["status"])},
        "source": row["source"],
        "category": {"code": row["category_code"], "name": row["category_name"], "name_en": row["category_name_en"]},
        "urgency": row["urgency"],
        "description": row["description"],
        "address": row["address"],
        "photos": list(row["photos"] or []),
        "lon": row["lon"],
        "lat": row["lat"],
        "cell": {"id": row["cell_id"], "code": row["cell_code"]} if row["cell_id"] is not None else None,
        "community": (
            {"code": row["community_code"], "name": row["community_name"]} if row["community_code"] else None
        ),
        "street": {"code": row["street_code"], "name": row["street_name"]} if row["street_code"] else None,
        "unit": (
            {"id": row["unit_id"], "code": row["unit_code"], "name": row["unit_name"]}
            if row["unit_id"] is not None
            else None
        ),
        "reported_at": _local(row["reported_at"]),
        "updated_at": _local(row["updated_at"]),
        "deadline": _local(row["deadline"]),
        "deadline_step": row["deadline_step"],
        "step_started_at": _local(row["step_started_at"]),
        "overdue": overdue,
        "overtime_ratio": ratio,
        "self_handled": row["self_handled"],
        "rework_count": row["rework_count"],
        "extension_request": row["extension_request"],
    }


def event_dict(row: Mapping[Any, Any]) -> dict:
    """One `case_events` row as plain data."""
    return {
        "id": row["id"],
        "at": _local(row["at"]),
        "action": row["action"],
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "actor": row["actor"],
        "role": row["role"],
        "user_id": row["user_id"],
        "note": row["note"],
        "unit": (
            {"id": row["unit_id"], "code": row["unit_code"], "name": row["unit_name"]}
            if row["unit_id"] is not None
            else None
        ),
        "deadline_before": _local(row["deadline_before"]),
        "deadline_after": _local(row["deadline_after"]),
        "photos": list(row["photos"] or []),
        "data": row["data"] or {},
    }


_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


def to_json(value: Any) -> str:
    """JSON text of plain data, safe inside HTML too: <, >, & and ' are written as \\u escapes."""
    # outside strings JSON never contains these characters, so escaping them everywhere is lossless
    out = json.dumps(jsonable(value), ensure_ascii=False)
    return out.translate(_HTML_UNSAFE)


def jsonable(value: Any) -> Any:
    """Plain data ready for json.dumps: datetimes and dates become ISO 8601 text, tuples lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- queries

_SELECT = """
SELECT f.id, f.case_no, f.status, f.source, f.category_code, k.name AS category_name,
       k.name_en AS category_name_en, f.urgency, f.description, f.address, f.photos, f.reported_at,
       ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.cell_id, gc.code AS cell_code,
       cm.code AS community_code, cm.name AS community_name, st.code AS street_code, st.name AS street_name,
       f.unit_id, u.code AS unit_code, u.name AS unit_name, f.deadline, f.deadline_step, f.step_started_at,
       f.self_handled, f.rework_count, f.extension_request, f.reporter_user_id, f.resume_state,
       (SELECT max(e.at) FROM case_events e WHERE e.case_id = f.id) AS updated_at
"""
_FROM = """
FROM cases f
JOIN categories k ON k.code = f.category_code
LEFT JOIN grid_cells gc ON gc.id = f.cell_id
LEFT JOIN regions cm ON cm.id = gc.community_id AND cm.level = 'community'
LEFT JOIN regions st ON st.id = cm.parent_id AND st.level = 'street'
LEFT JOIN units u ON u.id = f.unit_id
"""


def _where(actor: Actor, flt: CaseFilter, now: datetime) -> tuple[str, dict]:
    cond, params = scope_filter(actor, "f")
    parts = [cond]
    params = {**params, "now": now}
    for values, sql, name in (
        (flt.statuses, "f.status", "st_"),
        (flt.categories, "f.category_code", "cat"),
        (flt.cells, "gc.code", "cell"),
        (flt.streets, "st.code", "street"),
        (flt.units, "u.code", "unit"),
        (flt.case_nos, "f.case_no", "no"),
    ):
        if values:
            parts.append(f"{sql} = ANY(:{name})")
            params[name] = list(values)
    start, end = flt.period
    if start is not None:
        parts.append("f.reported_at >= :p_start")
        params["p_start"] = start
    if end is not None:
        parts.append("f.reported_at < :p_end")
        params["p_end"] = end
    if flt.overdue is not None:
        parts.append(OVERDUE_SQL if flt.overdue else f"NOT {OVERDUE_SQL}")
    if flt.bbox is not None:
        parts.append("f.geom && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)")
        params.update(zip(("bx0", "by0", "bx1", "by1"), flt.bbox))
    return " AND ".join(f"({p})" for p in parts), params


def _filter_joins(flt: CaseFilter) -> str:
    """The joins the filter's conditions need; counting needs no other, as none of them adds or drops a case."""
    # categories is an inner join, but category_code is NOT NULL with a foreign key, so it keeps every
    # case; the others are LEFT JOINs on primary keys. Leaving them out lets a plain count run as an
    # index-only scan of cases (50,000 cases: 26 ms with the joins, about 4 without).
    joins = []
    if flt.cells or flt.streets:
        joins.append("LEFT JOIN grid_cells gc ON gc.id = f.cell_id")
    if flt.streets:
        joins.append("LEFT JOIN regions cm ON cm.id = gc.community_id AND cm.level = 'community'")
        joins.append("LEFT JOIN regions st ON st.id = cm.parent_id AND st.level = 'street'")
    if flt.units:
        joins.append("LEFT JOIN units u ON u.id = f.unit_id")
    return " ".join(joins)


def _check_page(page: int, page_size: int, sort: str) -> None:
    """InputError for a sort key or a page the list does not have."""
    if sort not in SORTS:
        raise InputError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}", field="sort")
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InputError(f"page {page} / page_size {page_size}: page ≥ 1, page_size 1…{MAX_PAGE_SIZE}", field="page")


def list_cases(
    conn: Connection,
    actor: Actor,
    flt: CaseFilter = CaseFilter(),
    *,
    now: datetime,
    calendar: WorkCalendar,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    sort: str = DEFAULT_SORT,
) -> Page:
    """The cases the actor may see that match the filter, one page of them, newest report first by default."""
    _check_page(page, page_size, sort)
    where, params = _where(actor, flt, now)
    total = conn.execute(text(f"SELECT count(*) FROM cases f {_filter_joins(flt)} WHERE {where}"), params).scalar_one()
    rows = (
        conn.execute(
            text(f"{_SELECT} {_FROM} WHERE {where} ORDER BY {SORTS[sort]} LIMIT :limit OFFSET :offset"),
            {**params, "limit": page_size, "offset": (page - 1) * page_size},
        )
        .mappings()
        .all()
    )
    return Page([case_dict(r, now=now, calendar=calendar) for r in rows], total, page, page_size)


# The API's case list (GET /api/v1/cases) sends the fields the case list shows — the columns of the
# case pages' list, the report time it is sorted by, and the id that names the case for GET
# /cases/{id}, which has every field — as JSON that PostgreSQL makes. On the full demo a default page
# cost 42 ms before: 24 for the count over every join, 6 for the page's statement, 7 to turn its rows
# into dicts and JSON text in Python; now 10 in all (BENCHMARKS.md, "Serving").
_SUMMARY_SQL = {
    "id": "f.id",
    "case_no": "f.case_no",
    "status": "f.status",
    "status_label": "CAST(:labels AS jsonb) -> f.status",
    "source": "f.source",
    "category": "json_build_object('code', f.category_code, 'name', k.name, 'name_en', k.name_en)",
    "urgency": "f.urgency",
    "description": "f.description",
    "address": "f.address",
    "cell": "CASE WHEN f.cell_id IS NOT NULL THEN json_build_object('id', f.cell_id, 'code', gc.code) END",
    "unit": "CASE WHEN f.unit_id IS NOT NULL THEN json_build_object('id', f.unit_id, 'code', u.code, 'name', u.name) END",
    "reported_at": "f.reported_at",  # as the session's TimeZone writes it: list_cases_json sets the bureau's
    "deadline": "f.deadline",
    "deadline_step": "f.deadline_step",
    "overdue": OVERDUE_SQL,  # the rule `timing` applies in Python
    "rework_count": "f.rework_count",
    "extension_request": "f.extension_request",
}
SUMMARY_FIELDS = tuple(_SUMMARY_SQL)
_SUMMARY_JSON = "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in _SUMMARY_SQL.items()) + ")"
_HTML_ESCAPES = tuple((chr(c), esc) for c, esc in _HTML_UNSAFE.items())


def list_cases_json_sql(
    actor: Actor, flt: CaseFilter, *, now: datetime, page: int, page_size: int, sort: str
) -> tuple[str, dict]:
    """The one statement of `list_cases_json` (total and the page's items as JSON text), and its parameters."""
    _check_page(page, page_size, sort)
    where, params = _where(actor, flt, now)
    labels = json.dumps({s: {"zh": zh(s), "en": en(s)} for s in CASE_STATES}, ensure_ascii=False)
    # the page's cases are found first and their JSON made after: made below the sort, it was made
    # for every case that matched (a supervisor's 900: 27 ms) instead of for the page's 50
    sql = f"""
        SELECT (SELECT count(*) FROM cases f {_filter_joins(flt)} WHERE {where}) AS total,
               (SELECT coalesce(json_agg({_SUMMARY_JSON} ORDER BY {SORTS[sort]}), '[]')::text
                FROM (SELECT f.* FROM cases f {_filter_joins(flt)} WHERE {where}
                      ORDER BY {SORTS[sort]} LIMIT :limit OFFSET :offset) f
                JOIN categories k ON k.code = f.category_code
                LEFT JOIN grid_cells gc ON gc.id = f.cell_id
                LEFT JOIN units u ON u.id = f.unit_id) AS items"""
    return sql, {**params, "labels": labels, "limit": page_size, "offset": (page - 1) * page_size}


def list_cases_json(
    conn: Connection,
    actor: Actor,
    flt: CaseFilter = CaseFilter(),
    *,
    now: datetime,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    sort: str = DEFAULT_SORT,
) -> tuple[str, int]:
    """`list_cases`' page as the API's JSON text (`SUMMARY_FIELDS` of each case, safe inside HTML) and its total.

    Sets the transaction's TimeZone to the bureau's, so that times come out as `case_dict` gives them.
    """
    sql, params = list_cases_json_sql(actor, flt, now=now, page=page, page_size=page_size, sort=sort)
    # one round trip: the setting goes in the same query string as the statement
    row = conn.execute(text(f"SET LOCAL TimeZone = '{TZ.key}'; {sql}"), params).one()
    items = row.items
    # what to_json does; str.replace finds these few characters ~50× faster than translate maps every one
    for ch, esc in _HTML_ESCAPES:
        items = items.replace(ch, esc)
    total, pages = row.total, Page([], row.total, page, page_size).pages
    return f'{{"items": {items}, "total": {total}, "page": {page}, "page_size": {page_size}, "pages": {pages}}}', total


def case_events(conn: Connection, case_id: int) -> list[dict]:
    """The audit trail of a case, oldest first (callers check visibility first)."""
    rows = (
        conn.execute(
            text("""
        SELECT e.id, e.at, e.action, e.from_state, e.to_state, e.actor, e.role, e.user_id, e.note, e.unit_id,
               u.code AS unit_code, u.name AS unit_name, e.deadline_before, e.deadline_after, e.photos, e.data
        FROM case_events e LEFT JOIN units u ON u.id = e.unit_id
        WHERE e.case_id = :c ORDER BY e.at, e.id
    """),
            {"c": case_id},
        )
        .mappings()
        .all()
    )
    return [event_dict(r) for r in rows]


def get_case(
    conn: Connection,
    actor: Actor,
    case_id: int,
    *,
    now: datetime,
    calendar: WorkCalendar,
    events: bool = True,
    actions: bool = True,
) -> dict:
    """One case the actor may see, with its events and the actions the actor may take now; else NotFound."""
    cond, params = scope_filter(actor, "f")
    row = (
        conn.execute(text(f"{_SELECT} {_FROM} WHERE f.id = :id AND ({cond})"), {**params, "id": case_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no case {case_id}")  # the same answer for a case out of scope: a 404 tells nothing
    out = case_dict(row, now=now, calendar=calendar)
    if events:
        out["events"] = case_events(conn, case_id)
    if actions:
        out["allowed_actions"] = allowed_actions(conn, actor, dict(row))
    return out


def case_id_for_number(conn: Connection, case_no: str) -> int | None:
    """The id of the case with this number, or None (callers check visibility with get_case)."""
    return conn.execute(text("SELECT id FROM cases WHERE case_no = :n"), {"n": case_no}).scalar()


def case_number(conn: Connection, case_id: int) -> str | None:
    """The number (案件编号) of the case with this id, or None."""
    return conn.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": case_id}).scalar()


def unit(conn: Connection, *, code: str | None = None, unit_id: int | None = None) -> dict | None:
    """A responsible unit {id, code, name, kind} by code or id, or None."""
    if (code is None) == (unit_id is None):
        raise ValueError("give either code or unit_id")
    cond, value = ("code = :v", code) if code is not None else ("id = :v", unit_id)
    row = conn.execute(text(f"SELECT id, code, name, kind FROM units WHERE {cond}"), {"v": value}).mappings().first()
    return dict(row) if row else None


@dataclass(frozen=True)
class CategoryInfo:
    """A case category as readers see it."""

    code: str
    kind: str
    major_code: str
    major_name: str
    name: str
    name_en: str | None
    register_condition: str | None = None
    close_condition: str | None = None
    limits: dict = field(default_factory=dict)


def _category(row: Mapping[Any, Any]) -> CategoryInfo:
    limits = {
        k: row[k]
        for k in (
            "verify_limit",
            "register_limit",
            "dispatch_limit",
            "handle_limit",
            "handle_limit_urgent",
            "check_limit",
        )
    }
    return CategoryInfo(
        row["code"],
        row["kind"],
        row["major_code"],
        row["major_name"],
        row["name"],
        row["name_en"],
        row["register_condition"],
        row["close_condition"],
        limits,
    )


def categories(conn: Connection) -> list[CategoryInfo]:
    """Every case category, by code."""
    return [_category(r) for r in conn.execute(text("SELECT * FROM categories ORDER BY code")).mappings()]


def category(conn: Connection, code: str) -> CategoryInfo:
    """One category by code, or NotFound."""
    row = conn.execute(text("SELECT * FROM categories WHERE code = :c"), {"c": code}).mappings().first()
    if row is None:
        raise NotFound(f"no category {code!r}")
    return _category(row)


# ---------------------------------------------------------------- cells


def cell_by_code(conn: Connection, code: str, at: datetime) -> CellInfo:
    """The cell with this code valid at `at` (cells are versioned), or NotFound."""
    if not re.fullmatch(r"[0-9]{15}", code):
        raise InputError(f"{code!r} is not a 15-digit cell code", field="code")
    cell_id = conn.execute(
        text("""
        SELECT id FROM grid_cells WHERE code = :c AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)
    """),
        {"c": code, "at": at},
    ).scalar()
    if cell_id is None:
        raise NotFound(f"no cell {code} valid at {at.isoformat()}")
    return describe_cell(conn, cell_id)


def cell_at_point(
    conn: Connection, lon: float, lat: float, *, crs: str = "wgs84", at: datetime | None = None
) -> CellInfo:
    """The cell covering a point (any supported CRS) at `at`; NotFound outside the grid (gridmgr.grid.assign.locate)."""
    return locate(conn, lon, lat, crs, at)


def cell_dict(info: CellInfo) -> dict:
    """A cell with its hierarchy, units, people and duty grids as plain data."""

    def pair(p: tuple[str, str] | None) -> dict | None:
        return {"code": p[0], "name": p[1]} if p else None

    return {
        "id": info.id,
        "code": info.code,
        "area_m2": round(info.area_m2, 1),
        # '-infinity' (a cell valid since always) comes back from the driver as year 1
        "valid_from": info.valid_from if info.valid_from and info.valid_from.year > 1 else None,
        "valid_to": info.valid_to,
        "community": pair(info.community),
        "street": pair(info.street),
        "district": pair(info.district),
        "units": [dict(u) for u in info.units],
        "people": [dict(p) for p in info.people],
        "duty_grids": [dict(g) for g in info.duty_grids],
    }
