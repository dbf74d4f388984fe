"""Accountability reports: every indicator of `gridmgr.analytics.indicators` per cell, region, unit, supervisor or duty grid.

`compute(conn, period=Period.parse("2026-10"), level="street")` reads the audit trail in a few
set-based statements (the universe of rows, the case indicators, the layers' inventory) and returns
a `Report`: one `Row` per object of the level with its code, name, attributes and every figure, a
`total` row for the whole area, and the definitions. The counting rules are in the docstring of
`gridmgr.analytics.indicators`; the per-case facts they aggregate are built in `_CASE_FACTS` below.

Levels: `cell`, `community`, `street`, `district` (by the cell's code prefix, names from `regions`),
`unit` (the unit of the case's last dispatch before the cutoff), `supervisor` (the supervisor of
the case's cell through its duty grids) and `duty_grid`. A cell in two duty grids counts in both, so
supervisor and duty-grid rows may add up to more than the total. Cases outside every cell, never
dispatched or in no duty grid come in one row with code None, which rankings leave out; that row, and
a row for a cell no longer valid in the period, is listed only when one of its figures is not zero.

The inventory columns are the layers' per-cell metrics (`gridmgr.plugins.registry.Metric`) summed over the
cells of each row (a unit's cells: those it answers for in `cell_units` or through its duty grids).
They describe the layers as they stand, with date-derived values (an expired permit) judged on `today`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.analytics import indicators
from gridmgr.codes import MAX_YEAR, MIN_YEAR, TZ
from gridmgr.errors import InputError
from gridmgr.plugins import registry

LEVELS = ("cell", "community", "street", "district", "unit", "supervisor", "duty_grid")
# a cell code begins with its community's, street's and district's codes: the length of each level's prefix
CODE_LENGTH = {"cell": 15, "community": 12, "street": 9, "district": 6}
RECURRENCE_DAYS = 30


# ---------------------------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A reporting period of whole local days (Asia/Shanghai): week, month, quarter, year or a date range."""

    kind: str  # week, month, quarter, year, range
    first: date  # first day
    last: date  # last day, included

    _FORMS = "2026-W43 (week), 2026-10 (month), 2026Q4 (quarter), 2026 (year), 2026-10-01..2026-10-15 (range)"

    @classmethod
    def parse(cls, value: str) -> Period:
        """Read `2026-W43`, `2026-10`, `2026Q4`, `2026` or `2026-10-01..2026-10-15` (years 1900…2999)."""
        period = cls._parse(str(value).strip())
        # a year 9999 period's end (and its previous or next period) is past what dates can hold
        if period.first.year < MIN_YEAR or period.last.year > MAX_YEAR:
            raise InputError(f"bad period {value!r}: the years are {MIN_YEAR}…{MAX_YEAR}", field="period")
        return period

    @classmethod
    def _parse(cls, s: str) -> Period:
        try:
            if m := re.fullmatch(r"(\d{4})-?W(\d{1,2})", s, re.IGNORECASE):
                first = date.fromisocalendar(int(m[1]), int(m[2]), 1)
                return cls("week", first, first + timedelta(days=6))
            if m := re.fullmatch(r"(\d{4})-(\d{1,2})", s):
                return cls.month(int(m[1]), int(m[2]))
            if m := re.fullmatch(r"(\d{4})-?Q([1-4])", s, re.IGNORECASE):
                q = int(m[2])
                return cls("quarter", date(int(m[1]), 3 * q - 2, 1), cls.month(int(m[1]), 3 * q).last)
            if m := re.fullmatch(r"(\d{4})", s):
                return cls("year", date(int(m[1]), 1, 1), date(int(m[1]), 12, 31))
            if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", s):
                first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
                if last < first:
                    raise ValueError("the range ends before it starts")
                return cls("range", first, last)
        except ValueError as exc:
            raise InputError(f"bad period {s!r}: {exc}", field="period") from None
        raise InputError(f"bad period {s!r}: expected {cls._FORMS}", field="period")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """One calendar month."""
        first = date(year, month, 1)
        nxt = date(year + month // 12, month % 12 + 1, 1)
        return cls("month", first, nxt - timedelta(days=1))

    @property
    def start(self) -> datetime:
        """Local midnight starting the first day."""
        return datetime.combine(self.first, time(), TZ)

    @property
    def end(self) -> datetime:
        """Local midnight after the last day (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time(), TZ)

    @property
    def label(self) -> str:
        """The period written as `parse` reads it."""
        if self.kind == "week":
            y, w, _ = self.first.isocalendar()
            return f"{y}-W{w:02d}"
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first.year}Q{(self.first.month + 2) // 3}"
        if self.kind == "year":
            return f"{self.first.year}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def previous(self) -> Period:
        """The period of the same kind just before (a range: as many days, ending the day before)."""
        if self.kind == "week":
            return Period("week", self.first - timedelta(days=7), self.first - timedelta(days=1))
        if self.kind == "month":
            before = self.first - timedelta(days=1)
            return Period.month(before.year, before.month)
        if self.kind == "quarter":
            before = self.first - timedelta(days=1)
            return Period("quarter", date(before.year, before.month - 2, 1), before)
        if self.kind == "year":
            return Period("year", date(self.first.year - 1, 1, 1), date(self.first.year - 1, 12, 31))
        days = (self.last - self.first).days + 1
        return Period("range", self.first - timedelta(days=days), self.first - timedelta(days=1))

    def __str__(self) -> str:
        return self.label


# ----------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One object of a report: its code (None: cases belonging to no object), name, attributes, figures."""

    code: str | None
    name: str
    values: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    level: str = ""

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A figure, rate or inventory value by key."""
        return self.values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """code, name, the attributes and every figure in one flat mapping (for tables and exports)."""
        return {"code": self.code, "name": self.name, **self.attrs, **self.values}


@dataclass
class Report:
    """The figures of one period at one level: `rows`, the `total` of the area, and the `definitions`."""

    period: Period
    level: str
    today: date
    cutoff: datetime  # events up to this moment were read (the period end, or the end of `today`)
    rows: list[Row]
    total: Row
    definitions: tuple  # Indicator, Rate and inventory Indicator (kind "inventory"), in column order
    area: str | None = None

    def row(self, code: str | None) -> Row:
        """The row of one object by code (KeyError if the level has no such object)."""
        for r in self.rows:
            if r.code == code:
                return r
        raise KeyError(code)


# --------------------------------------------------------------------------------------------------- SQL

_AREA = "(CAST(:area AS text) IS NULL OR {col} LIKE CAST(:area AS text) || '%')"
_VALID_CELLS = f"g.valid_from < :end AND (g.valid_to IS NULL OR g.valid_to > :start) AND {_AREA.format(col='g.code')}"

# per level: which object keys a cell maps to (None for unit: cases go by their last dispatch)
_CELL_KEYS = {
    **{lv: f"SELECT id AS cell_id, left(code, {n}) AS key FROM grid_cells" for lv, n in CODE_LENGTH.items()},
    "supervisor": """SELECT DISTINCT dc.cell_id, p.code AS key FROM duty_grid_cells dc
                     JOIN duty_grids g ON g.id = dc.duty_grid_id JOIN people p ON p.id = g.supervisor_id""",
    "duty_grid": "SELECT dc.cell_id, g.code AS key FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id",
    # for the inventory only: the cells a unit answers for, in any duty or through its duty grids
    "unit": """SELECT cu.cell_id, u.code AS key FROM cell_units cu JOIN units u ON u.id = cu.unit_id
               UNION SELECT dc.cell_id, u.code FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id
               JOIN units u ON u.id = g.unit_id""",
}

_PARENT = {
    "cell": "left(x.key, 12)",
    "community": "left(x.key, 9)",
    "street": "left(x.key, 6)",
    "district": "CAST(NULL AS text)",
}
_UNIVERSE = {
    "cell": f"""SELECT DISTINCT ON (g.code) g.code AS key, r.name || ' ' || right(g.code, 3) AS name,
                       left(g.code, 12) AS parent
                FROM grid_cells g JOIN regions r ON r.id = g.community_id WHERE {_VALID_CELLS}
                ORDER BY g.code, g.valid_from DESC""",
    **{
        lv: f"""SELECT x.key, COALESCE(r.name, x.key) AS name, {_PARENT[lv]} AS parent
               FROM (SELECT DISTINCT left(g.code, {n}) AS key FROM grid_cells g WHERE {_VALID_CELLS}) x
               LEFT JOIN regions r ON r.code = x.key ORDER BY x.key"""
        for lv, n in CODE_LENGTH.items()
        if lv != "cell"
    },
    "unit": 'SELECT u.code AS key, u.name, u.kind, u.kind AS "group" FROM units u ORDER BY u.code',
    "supervisor": """SELECT DISTINCT p.code AS key, p.name, u.code AS unit FROM duty_grids g
                     JOIN people p ON p.id = g.supervisor_id LEFT JOIN units u ON u.id = p.unit_id ORDER BY p.code""",
    "duty_grid": """SELECT g.code AS key, g.name, u.code AS unit, p.code AS supervisor FROM duty_grids g
                    LEFT JOIN units u ON u.id = g.unit_id LEFT JOIN people p ON p.id = g.supervisor_id
                    ORDER BY g.code""",
}
_NO_OBJECT = {
    "unit": "未派遣 not dispatched",
    "supervisor": "无责任网格 no duty grid",
    "duty_grid": "无责任网格 no duty grid",
}

# Which cases are read. Every indicator is a filtered aggregate over the per-case facts `k` of the cases
# reported before the cutoff, and a case outside the five sets below has every filter false (it was
# not reported in the period, took no step in it, fell due in none of it, and was closed or rejected
# before its cutoff), so reading only those sets gives the very figures of reading every case, while
# the work follows the period instead of the whole history (migration 0007 indexes each set):
#   reported in the period · touched by an event in it · a handling deadline in it (the due cohort) ·
#   open now (`cases.status`) · closed or rejected after the cutoff (open at the cutoff).
# The last two find the cases open at the cutoff: closed and rejected are final, the trail is
# append-only, and gridmgr.cases.workflow writes a case's status with the event that sets it, so a case not
# in them was closed or rejected before the cutoff. `_CASES_ALL` reads every case (tests compare them).
_CASES_COUNTED = """
    SELECT c.id FROM cases c WHERE c.reported_at >= :start AND c.reported_at < :end AND c.reported_at < :cutoff
    UNION SELECT e.case_id FROM case_events e WHERE e.at >= :start AND e.at < :cutoff
    UNION SELECT e.case_id FROM case_events e
          WHERE e.action IN ('dispatch', 'approve_extension', 'resume')  -- as ix_case_events_clock_deadline_after
            AND e.deadline_after >= :start AND e.deadline_after < :end AND e.deadline_after < :cutoff
            AND e.at < :cutoff
    UNION SELECT c.id FROM cases c
          WHERE c.status NOT IN ('closed', 'rejected') AND c.reported_at < :cutoff  -- as ix_cases_open_cell_id
    UNION SELECT c.id FROM case_events e JOIN cases c ON c.id = e.case_id
          WHERE e.at >= :cutoff AND e.to_state IN ('closed', 'rejected') AND c.reported_at < :cutoff"""
_CASES_ALL = "SELECT c.id FROM cases c WHERE c.reported_at < :cutoff"

# The per-case facts (one row `k` per case reported before the cutoff, among `cand`); see gridmgr.analytics.indicators.
_CASE_FACTS = """
cand AS MATERIALIZED (SELECT id FROM ({cases}) u ORDER BY id),  -- in order: the lookups below walk the indexes
ev AS MATERIALIZED (
    SELECT e.id, e.case_id, e.at, e.action, e.to_state, e.unit_id, e.deadline_after,
           e.at >= :start AND e.at < :end AS in_p,
           e.at <= COALESCE(e.deadline_before, e.at) AS in_time
    -- LATERAL … OFFSET 0: one index lookup per case, whatever the planner guesses of cand's size
    -- (it guesses the union of the sets, often 10× too many, and would then hash the whole table)
    FROM cand CROSS JOIN LATERAL (SELECT * FROM case_events e WHERE e.case_id = cand.id AND e.at < :cutoff
                                  OFFSET 0) e
),
-- the handling deadline as it changes: set by dispatch, extension or a resume into handling,
-- cleared by a pause; `replaced_at` is when the next change came
clock AS (
    SELECT case_id,
           CASE WHEN action IN ('suspend', 'defer')
                  OR (action = 'resume' AND to_state NOT IN ('dispatched', 'rework')) THEN NULL
                ELSE deadline_after END AS due,
           lead(at) OVER (PARTITION BY case_id ORDER BY at, id) AS replaced_at
    FROM ev WHERE action IN ('dispatch', 'approve_extension', 'suspend', 'defer', 'resume')
),
-- a case falls due when a handling deadline is reached while still in force
due AS (
    SELECT case_id, max(due) AS due_at FROM clock
    WHERE due >= :start AND due < :end AND due < :cutoff AND (replaced_at IS NULL OR replaced_at > due)
    GROUP BY case_id
),
per AS (
    SELECT case_id,
           (array_agg(to_state ORDER BY at DESC, id DESC))[1] AS state,
           (array_agg(deadline_after ORDER BY at DESC, id DESC))[1] AS deadline_now,
           (array_agg(unit_id ORDER BY at DESC, id DESC) FILTER (WHERE action = 'dispatch'))[1] AS unit_id,
           (array_agg(in_p ORDER BY at, id) FILTER (WHERE action = 'dispatch'))[1] AS disp_in_p,
           (array_agg(in_p AND in_time ORDER BY at, id) FILTER (WHERE action = 'dispatch'))[1] AS disp_on_time,
           bool_or(action = 'return') AS returned,
           bool_or(action = 'reject') AS rejected,
           bool_or(action = 'self_handle') AS self_handled,
           bool_or(action = 'self_handle' AND in_p) AS self_in_p,
           bool_or(action = 'register') AS registered,
           bool_or(action = 'verify' AND in_p) AS ver_in_p,
           bool_or(action = 'verify' AND in_p AND in_time) AS ver_on_time,
           bool_or(action = 'register' AND in_p) AS reg_in_p,
           bool_or(action = 'register' AND in_p AND in_time) AS reg_on_time,
           bool_or(action = 'return' AND in_p) AS ret_in_p,
           bool_or(action = 'approve_extension') AS extended,
           bool_or(action = 'suspend' AND in_p) AS susp_in_p,
           bool_or(action = 'defer' AND in_p) AS defer_in_p,
           max(at) FILTER (WHERE action = 'handle') AS last_handle,
           max(at) FILTER (WHERE action = 'close' AND in_p) AS closed_in_p,
           count(*) FILTER (WHERE action = 'check_fail') AS reworks,
           count(*) FILTER (WHERE action IN ('check_pass', 'check_fail') AND in_p) AS checks,
           count(*) FILTER (WHERE action IN ('check_pass', 'check_fail') AND in_p AND in_time) AS checks_on_time
    FROM ev GROUP BY case_id
),
k AS MATERIALIZED (
    SELECT c.id, c.cell_id, p.unit_id, COALESCE(p.state, 'reported') AS state,
           c.reported_at >= :start AND c.reported_at < :end AS rep,
           COALESCE(p.rejected, false) AS rejected,
           COALESCE(p.self_handled, false) AS self_handled,
           COALESCE(p.self_in_p, false) AS self_in_p,
           COALESCE(p.registered, false) AS registered,
           COALESCE(p.ver_in_p, false) AS ver_in_p,
           COALESCE(p.ver_on_time, false) AS ver_on_time,
           COALESCE(p.reg_in_p, false) AS reg_in_p,
           COALESCE(p.reg_on_time, false) AS reg_on_time,
           COALESCE(p.disp_in_p, false) AS disp_in_p,
           COALESCE(p.disp_on_time, false) AS disp_on_time,
           COALESCE(p.disp_in_p AND NOT p.returned, false) AS disp_correct,
           COALESCE(p.ret_in_p, false) AS ret_in_p,
           d.due_at IS NOT NULL AS due,
           COALESCE(p.state IN ('handled', 'checked', 'closed'), false) AS handled,
           COALESCE(p.state = 'closed', false) AS closed,
           COALESCE(p.last_handle <= d.due_at, false) AS on_time,
           COALESCE(p.state IN ('registered', 'dispatched', 'returned', 'rework'), false) AS open_work,
           COALESCE(p.reworks, 0) AS reworks,
           COALESCE(p.extended, false) AS extended,
           COALESCE(p.susp_in_p, false) AS susp_in_p,
           COALESCE(p.defer_in_p, false) AS defer_in_p,
           c.urgency = 'urgent' AS urgent,
           COALESCE(p.checks, 0) AS checks,
           COALESCE(p.checks_on_time, 0) AS checks_on_time,
           p.closed_in_p,
           extract(epoch FROM p.closed_in_p - c.reported_at) / 3600.0 AS close_hours,
           COALESCE(p.state NOT IN ('closed', 'rejected', 'suspended', 'deferred') AND p.deadline_now < :cutoff,
                    false) AS overdue_now,
           (c.cell_id IS NOT NULL AND c.reported_at >= :start AND c.reported_at < :end
            AND NOT COALESCE(p.rejected, false)
            AND EXISTS (
                SELECT 1 FROM cases q
                WHERE q.cell_id = c.cell_id AND q.category_code = c.category_code
                  AND q.reported_at >= c.reported_at - make_interval(days => :recurrence_days)
                  AND (q.reported_at < c.reported_at OR (q.reported_at = c.reported_at AND q.id < c.id))
                  AND NOT EXISTS (SELECT 1 FROM case_events r
                                  WHERE r.case_id = q.id AND r.action = 'reject' AND r.at < :cutoff))
           ) AS recurrent
    FROM cand CROSS JOIN LATERAL (SELECT * FROM cases c WHERE c.id = cand.id AND c.reported_at < :cutoff OFFSET 0) c
         LEFT JOIN per p ON p.case_id = c.id LEFT JOIN due d ON d.case_id = c.id
    WHERE (CAST(:area AS text) IS NULL
           OR c.cell_id IN (SELECT id FROM grid_cells WHERE code LIKE CAST(:area AS text) || '%'))
)
"""


def _case_sql(level: str, every_case: bool = False) -> str:
    aggs = ",\n       ".join(f'{d.sql} AS "{d.key}"' for d in indicators.COUNTS)
    facts = _CASE_FACTS.replace("{cases}", _CASES_ALL if every_case else _CASES_COUNTED)
    if level == "unit":
        join, key = "LEFT JOIN units km ON km.id = k.unit_id", "km.code"
    else:
        join, key = f"LEFT JOIN ({_CELL_KEYS[level]}) km ON km.cell_id = k.cell_id", "km.key"
    return (
        f"WITH {facts}\n"
        f"SELECT NULL AS key, true AS total,\n       {aggs}\nFROM k\n"
        f"UNION ALL\n"
        f"SELECT {key} AS key, false AS total,\n       {aggs}\nFROM k {join} GROUP BY {key}"
    )


@contextmanager
def _without_jit(conn: Connection) -> Iterator[None]:
    """JIT compilation off for the statements inside, in the caller's transaction only.

    The case statement's cost estimate is dominated by guesses (the recurrence probe per case, the size
    of the union of counted cases) that lift it over `jit_above_cost`; compiling then took 1.0–1.4 s
    for 0.3 s of execution on 10⁶ cases (bench/reports.py).
    """
    before = conn.execute(text("SELECT current_setting('jit')")).scalar()
    conn.execute(text("SELECT set_config('jit', 'off', true)"))
    yield
    # not reached after an error: the setting is local and ends with the (failed) transaction
    conn.execute(text("SELECT set_config('jit', :v, true)"), {"v": before})


def _case_counts(conn: Connection, level: str, params: dict, every_case: bool = False) -> dict:
    """The case figures per (total?, key) of one level; `every_case` reads all cases (the reference)."""
    sql = text(_case_sql(level, every_case))
    return {(r["total"], r["key"]): dict(r) for r in conn.execute(sql, params).mappings()}


def inventory_metrics() -> list[tuple[registry.Layer, registry.Metric]]:
    """Every spatial layer's per-cell metrics, in registry order."""
    out, seen = [], set()
    for layer in registry.layers(spatial=True):
        for m in layer.metrics:
            if m.name in seen or m.name in indicators.BY_KEY:
                raise ValueError(f"layer {layer.name}: metric {m.name!r} clashes with another report column")
            seen.add(m.name)
            out.append((layer, m))
    return out


def _counted_rows(sql: str) -> tuple[str, str]:
    """A metric `count(*) FILTER (WHERE cond)` as `count(*)` over the rows WHERE cond; others as they are.

    The same figures (a cell with no such row reads as 0), but the condition can then use an index:
    open cases are a few thousand of 10⁶ (ix_cases_open_cell_id), which a filter would find by a full scan.
    """
    m = re.fullmatch(r"\s*count\(\*\)\s+FILTER\s*\(\s*WHERE\s+(.+)\)\s*", sql, re.IGNORECASE | re.DOTALL)
    depth = [0]  # `cond` must be one expression: its parentheses never close more than they opened
    for ch in m[1] if m else "":
        depth.append(depth[-1] + {"(": 1, ")": -1}.get(ch, 0))
    return ("count(*)", m[1]) if m and min(depth) == 0 and depth[-1] == 0 else (sql, "true")


def _inventory_sql(level: str, metrics: list[tuple[registry.Layer, registry.Metric]]) -> str | None:
    if not metrics:
        return None
    branches = []
    for layer, metric in metrics:
        agg, where = _counted_rows(metric.sql)
        cols = ", ".join(
            f'CAST(({agg}) AS numeric) AS "{m.name}"' if m is metric else f'CAST(NULL AS numeric) AS "{m.name}"'
            for _, m in metrics
        )
        branches.append(
            f"SELECT f.cell_id, {cols} FROM {layer.table.name} f "
            f"WHERE f.cell_id IS NOT NULL AND ({where}) GROUP BY f.cell_id"
        )
    sums = ", ".join(f'coalesce(sum("{m.name}"), 0) AS "{m.name}"' for _, m in metrics)
    union = "\n    UNION ALL ".join(branches)
    area = _AREA.format(col="gc.code")
    return f"""
WITH inv AS ({union}),
per_cell AS (SELECT inv.cell_id, {sums} FROM inv JOIN grid_cells gc ON gc.id = inv.cell_id
             WHERE {area} GROUP BY inv.cell_id)
SELECT NULL AS key, true AS total, {sums} FROM per_cell
UNION ALL
SELECT km.key, false AS total, {sums} FROM per_cell JOIN ({_CELL_KEYS[level]}) km ON km.cell_id = per_cell.cell_id
GROUP BY km.key"""


# ---------------------------------------------------------------------------------------------- compute


def level_key(level: str) -> str:
    """The canonical level name (`duty-grid` is accepted for `duty_grid`), or InputError."""
    key = level.strip().lower().replace("-", "_")
    if key not in LEVELS:
        raise InputError(f"unknown level {level!r}; known: {', '.join(LEVELS)}", field="level")
    return key


def cutoff_for(period: Period, today: date) -> datetime:
    """The moment up to which events are read: the period end, or the end of `today` if that is earlier."""
    return max(period.start, min(period.end, datetime.combine(today + timedelta(days=1), time(), TZ)))


def definitions() -> tuple:
    """All report columns in order: counts, rates, then the layers' inventory metrics."""
    inventory = tuple(
        indicators.Indicator(
            m.name,
            m.label_zh,
            m.label_en,
            f"{layer.title_zh}：{m.label_zh}",
            "the layer as it stands, summed over the row's cells",
            None,
            kind="inventory",
            aggregate=m.sql,
        )
        for layer, m in inventory_metrics()
    )
    return (*indicators.COUNTS, *indicators.RATES, *inventory)


def compute(
    conn: Connection,
    *,
    period: Period,
    level: str,
    today: date | None = None,
    area: str | None = None,
    recurrence_days: int = RECURRENCE_DAYS,
) -> Report:
    """Every indicator of one period at one level (see the module docstring); `area` limits to a code prefix."""
    level = level_key(level)
    if isinstance(period, str):
        period = Period.parse(period)
    params = _params(period, today, area, recurrence_days)
    today, cutoff = params["today"], params["cutoff"]
    metrics = inventory_metrics()
    universe = conn.execute(text(_UNIVERSE[level]), params).mappings().all()
    with _without_jit(conn):
        counts = _case_counts(conn, level, params)
    inv_sql = _inventory_sql(level, metrics)
    inventory = {(r["total"], r["key"]): r for r in conn.execute(text(inv_sql), params).mappings()} if inv_sql else {}

    nothing: dict[str, float | None] = {d.key: None if d.kind == "hours" else 0 for d in indicators.COUNTS}
    nothing.update(indicators.rates(nothing))

    def figures(key_: tuple) -> dict[str, Any]:
        # a cell grid has thousands of rows: each looked up once, the figures of an empty row made once
        found, stock = counts.get(key_), inventory.get(key_)
        if found is None:
            values = dict(nothing)
        else:
            values = {d.key: _number(found[d.key], d.kind) for d in indicators.COUNTS}
            values.update(indicators.rates(values))
        values.update({m.name: _number(stock[m.name]) if stock is not None else 0 for _, m in metrics})
        return values

    rows, seen = [], set()
    for u in universe:
        attrs = {k: v for k, v in u.items() if k not in ("key", "name")}
        rows.append(Row(u["key"], u["name"], figures((False, u["key"])), attrs, level))
        seen.add(u["key"])
    for (total, key), figs in counts.items():  # no object of the level (out of grid, never dispatched, …)
        # listed only with a figure to show: the cases read depend on the period (see `_CASES_COUNTED`)
        if not total and key not in seen and any(figs[d.key] not in (0, None) for d in indicators.COUNTS):
            name = _NO_OBJECT.get(level, "网格外 out of grid") if key is None else key
            rows.append(Row(key, name, figures((False, key)), {}, level))
    total_row = Row(None, "合计 total", figures((True, None)), {}, level)
    return Report(period, level, today, cutoff, rows, total_row, definitions(), area)


def _params(period: Period, today: date | None, area: str | None, recurrence_days: int) -> dict[str, Any]:
    if area is not None and not re.fullmatch(r"[0-9]{1,15}", area):
        raise InputError(f"bad area {area!r}: expected a district, street, community or cell code", field="area")
    today = today or datetime.now(TZ).date()
    return {
        "start": period.start,
        "end": period.end,
        "cutoff": cutoff_for(period, today),
        "today": today,
        "area": area,
        "recurrence_days": int(recurrence_days),
    }


def case_figures(
    conn: Connection,
    *,
    period: Period,
    today: date | None = None,
    area: str | None = None,
    recurrence_days: int = RECURRENCE_DAYS,
    every_case: bool = False,
) -> dict[int, dict[str, int]]:
    """The cases behind the figures: what each case adds to every count of the catalogue, by case id.

    The report's counts are these summed (`compute` aggregates the same per-case facts), so a figure
    can be traced to its cases, and a rate's cases checked to lie within its denominator's.
    Cases that add nothing to any count are left out.
    """
    counts = [d for d in indicators.COUNTS if d.per_case is not None]
    if isinstance(period, str):
        period = Period.parse(period)
    params = _params(period, today, area, recurrence_days)
    facts = _CASE_FACTS.replace("{cases}", _CASES_ALL if every_case else _CASES_COUNTED)
    columns = ",\n       ".join(f'{d.per_case} AS "{d.key}"' for d in counts)
    sql = f"WITH {facts}\nSELECT k.id, {columns}\nFROM k ORDER BY k.id"
    out: dict[int, dict[str, int]] = {}
    with _without_jit(conn):
        for r in conn.execute(text(sql), params).mappings():
            figures = {d.key: int(r[d.key]) for d in counts}
            if any(figures.values()):
                out[r["id"]] = figures
    return out


def _number(value: Any, kind: str = "count") -> Any:
    if value is not None and kind == "hours":
        return float(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
