"""Indicators and reports: the Tianmen figures exactly, a hand-computed October, periods, levels, inventory."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from gridmgr.analytics import indicators
from gridmgr.analytics.accountability import LEVELS, Period, compute
from gridmgr.cases import workflow
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.errors import InputError

from support import SMALL_ORIGIN, SMALL_STEP

TZ = ZoneInfo("Asia/Shanghai")
KEEP = object()  # a step that leaves the deadline as it was


def t(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


# ------------------------------------------------------------------------------------------- builders


_case_no = iter(range(1, 10**6))


def add_case(conn, cell_id, category, steps, *, source="supervisor", urgency="normal") -> int:
    """Insert one case and its audit trail as the workflow writes it; returns the case id.

    `steps`: (action, at[, deadline_after[, unit_id]]); the deadline defaults to what the action's
    step does (cleared for "" steps, kept otherwise); deadline_before chains from the step before.
    """
    state = deadline = resume = None
    events = []
    for action, at, *rest in steps:
        new = rest[0] if rest else KEEP
        unit = rest[1] if len(rest) > 1 else None
        if action == "report":
            target, step = "reported", None
        else:
            tr = workflow.TRANSITIONS[action]
            assert state in tr.sources, f"{action} from {state}"
            target, step = tr.target or state, tr.step
            if action == "resume":
                target = resume
            if target in workflow.PAUSED:
                resume = state
        if new is KEEP:
            new = None if step == "" else deadline
        events.append({"at": at, "a": action, "f": state, "t": target, "u": unit, "db": deadline, "da": new})
        state, deadline = target, new
    units = [e["u"] for e in events if e["a"] == "dispatch"]
    cid = conn.execute(
        text("""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, urgency, reported_at, status, unit_id)
        SELECT ST_PointOnSurface(g.geom), g.id, :no, :cat, :src, :urg, :at, :st, :unit
        FROM grid_cells g WHERE g.id = :cell
        RETURNING id
    """),
        {
            "no": f"T{next(_case_no):07d}",
            "cat": category,
            "src": source,
            "urg": urgency,
            "at": steps[0][1],
            "st": state,
            "unit": units[-1] if units else None,
            "cell": cell_id,
        },
    ).scalar()
    conn.execute(
        text("""
        INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, unit_id,
                                 deadline_before, deadline_after)
        VALUES (:c, :at, :a, :f, :t, 'test', 'system', :u, :db, :da)
    """),
        [{**e, "c": cid} for e in events],
    )
    return cid


def std(r: datetime, due: datetime, unit: int) -> list:
    """Reported at r (register within 1 h), registered at +30 min, dispatched at +1 h with handling due `due`."""
    from datetime import timedelta as td

    return [
        ("report", r, r + td(hours=1)),
        ("register", r + td(minutes=30), r + td(hours=1, minutes=30)),
        ("dispatch", r + td(hours=1), due, unit),
    ]


@pytest.fixture
def october(conn, org):
    """The hand-computed fixture (see the expected figures in test_october_total)."""
    c1, c2, c3, c4 = org["cells"]
    u1, u2, u3 = org["units"]["HW01"], org["units"]["ZF01"], org["units"]["ZF02"]
    cat = org["cats"]
    ids = {}
    ids["A"] = add_case(
        conn,
        c1,
        cat[0],
        std(t(9, 29), t(10, 2, 10), u1)
        + [("handle", t(10, 1, 9), t(10, 1, 13)), ("check_pass", t(10, 1, 10), t(10, 1, 11)), ("close", t(10, 2, 9))],
    )
    ids["B"] = add_case(
        conn,
        c1,
        cat[1],
        std(t(10, 30), t(11, 3, 10), u1)
        + [
            ("handle", t(10, 31, 9), t(10, 31, 13)),
            ("check_pass", t(11, 2, 9), t(11, 2, 10)),
            ("close", t(11, 2, 9, 30)),
        ],
    )
    ids["C"] = add_case(
        conn,
        c2,
        cat[2],
        std(t(10, 6), t(10, 10, 10), u2)
        + [
            ("handle", t(10, 12, 9), t(10, 12, 13)),
            ("check_pass", t(10, 12, 14), t(10, 12, 15)),
            ("close", t(10, 13, 9)),
        ],
    )
    ids["D"] = add_case(
        conn,
        c2,
        cat[3],
        std(t(10, 1), t(10, 8, 10), u2)
        + [("request_extension", t(10, 7, 9)), ("approve_extension", t(10, 7, 10), t(11, 5, 10))],
    )
    ids["E"] = add_case(
        conn,
        c3,
        cat[4],
        std(t(10, 1), t(10, 8, 10), u1)
        + [
            ("request_extension", t(10, 8, 9)),
            ("approve_extension", t(10, 9, 9), t(10, 20, 10)),
            ("handle", t(10, 19, 9), t(10, 19, 13)),
            ("check_pass", t(10, 19, 10), t(10, 19, 11)),
            ("close", t(10, 19, 11)),
        ],
    )
    ids["F"] = add_case(conn, c3, cat[5], std(t(10, 1), t(10, 8, 10), u2) + [("suspend", t(10, 6, 9))])
    ids["G"] = add_case(
        conn,
        c3,
        cat[6],
        std(t(10, 1), t(10, 8, 10), u2)
        + [
            ("suspend", t(10, 6, 9)),
            ("resume", t(10, 15, 9), t(10, 18, 9)),
            ("handle", t(10, 17, 9), t(10, 17, 13)),
            ("check_pass", t(10, 17, 10), t(10, 17, 11)),
            ("close", t(10, 18, 10)),
        ],
    )
    ids["H"] = add_case(
        conn,
        c4,
        cat[7],
        std(t(10, 1), t(10, 5, 10), u1)
        + [
            ("handle", t(10, 2, 9), t(10, 2, 13)),
            ("check_fail", t(10, 2, 10), t(10, 3, 10)),
            ("handle", t(10, 3, 9), t(10, 3, 13)),
            ("check_fail", t(10, 3, 10), t(10, 4, 10)),
            ("handle", t(10, 4, 9), t(10, 4, 13)),
            ("check_fail", t(10, 4, 10), t(10, 6, 10)),
            ("handle", t(10, 6, 9), t(10, 6, 13)),
            ("check_pass", t(10, 6, 10), t(10, 6, 11)),
            ("close", t(10, 7, 9)),
        ],
    )
    ids["I"] = add_case(conn, c4, cat[8], std(t(10, 1), t(10, 8, 10), u2) + [("defer", t(10, 10, 9))])
    ids["J"] = add_case(conn, c4, cat[9], std(t(10, 1), t(10, 8, 10), u2) + [("defer", t(10, 7, 9))])
    ids["K"] = add_case(conn, c1, cat[10], std(t(10, 15), t(10, 20, 10), u2))
    ids["L"] = add_case(
        conn,
        c2,
        cat[11],
        [
            ("report", t(10, 14, 9), t(10, 14, 11)),
            ("verify", t(10, 14, 10, 30), t(10, 14, 11, 30)),
            ("register", t(10, 14, 12), t(10, 14, 13)),
            ("dispatch", t(10, 14, 12, 30), t(10, 16, 12, 30), u1),
            ("return", t(10, 14, 14), t(10, 14, 15)),
            ("dispatch", t(10, 14, 14, 30), t(10, 17, 14, 30), u3),
            ("handle", t(10, 16, 9), t(10, 16, 13)),
            ("check_pass", t(10, 16, 14), t(10, 16, 15)),
            ("close", t(10, 17, 9)),
        ],
        source="public",
    )
    ids["M"] = add_case(conn, c1, cat[12], [("report", t(10, 20, 9), t(10, 20, 10)), ("self_handle", t(10, 20, 9, 30))])
    ids["N"] = add_case(conn, c2, cat[13], [("report", t(10, 21, 9), t(10, 21, 10)), ("reject", t(10, 21, 10))])
    ids["O"] = add_case(conn, c1, cat[10], [("report", t(10, 25, 9), t(10, 25, 10))])
    ids["P"] = add_case(
        conn,
        c1,
        cat[14],
        std(t(10, 20), t(10, 20, 14), u1)
        + [
            ("handle", t(10, 20, 13), t(10, 20, 17)),
            ("check_pass", t(10, 20, 14), t(10, 20, 15)),
            ("close", t(10, 20, 15)),
        ],
        urgency="urgent",
    )
    ids["Q"] = add_case(
        conn,
        c2,
        cat[15],
        std(t(10, 22), t(10, 22, 14), u2)
        + [("handle", t(10, 22, 16), t(10, 22, 20)), ("check_pass", t(10, 22, 17), t(10, 22, 18))],
        urgency="urgent",
    )
    ids["R"] = add_case(
        conn,
        c3,
        cat[16],
        std(t(9, 1), t(9, 5, 10), u1)
        + [("handle", t(9, 4, 9), t(9, 4, 13)), ("check_pass", t(9, 4, 10), t(9, 4, 11)), ("close", t(9, 5, 9))],
    )
    return {**org, "ids": ids}


AFTER = date(2026, 11, 30)  # "today" well after October and November


def oct_report(conn, level="district", **kw):
    kw.setdefault("today", AFTER)
    return compute(conn, period=Period.parse("2026-10"), level=level, **kw)


# ---------------------------------------------------------------------------------------------- Tianmen

# Tianmen, Dec 2016 [docs/domain.md §6.4]: 1,054 received, 996 registered, 972 due, 911 closed, 737 on time.
_BASE = [
    ("report", None, "reported", 0, 1),
    ("register", "reported", "registered", 0.5, 2),
    ("dispatch", "registered", "dispatched", 1, 73),
]
TIANMEN = {  # pattern: (cases, steps after the base: action, from, to, hours after report, deadline hours)
    "on_time": (
        737,
        [
            ("handle", "dispatched", "handled", 72, 76),
            ("check_pass", "handled", "checked", 73, 77),
            ("close", "checked", "closed", 74, None),
        ],
    ),
    "late": (
        174,
        [
            ("handle", "dispatched", "handled", 75, 79),
            ("check_pass", "handled", "checked", 76, 80),
            ("close", "checked", "closed", 77, None),
        ],
    ),
    "open": (30, []),
    "unchecked": (20, [("handle", "dispatched", "handled", 75, 79)]),
    "rework": (11, [("handle", "dispatched", "handled", 70, 74), ("check_fail", "handled", "rework", 71, 81)]),
    "due_in_january": (24, []),
}


def build_tianmen(conn, cell_ids: list[int], unit_id: int) -> None:
    """1,054 cases of December 2016 and their trails in three set-based statements."""
    plan = [(p, n) for p, (n, _) in TIANMEN.items()] + [("rejected", 58)]
    steps = [(p, i, *s) for p, (_, extra) in TIANMEN.items() for i, s in enumerate(_BASE + extra)]
    steps += [
        ("rejected", 0, "report", None, "reported", 0, 1),
        ("rejected", 1, "reject", "reported", "rejected", 0.5, None),
    ]
    conn.execute(
        text("""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, reported_at, description, unit_id)
        SELECT ST_PointOnSurface(g.geom), g.id, 'TM' || lpad(x.i::text, 6, '0'), '0201', 'supervisor',
               CASE WHEN x.pattern = 'due_in_january' THEN TIMESTAMPTZ '2016-12-30 09:00+08'
                    ELSE TIMESTAMPTZ '2016-12-01 09:00+08' + make_interval(days => (x.i % 26)::int) END,
               x.pattern, CAST(:unit AS bigint)
        FROM (SELECT p.pattern, row_number() OVER () AS i
              FROM unnest(CAST(:patterns AS text[]), CAST(:counts AS int[])) AS p(pattern, n),
                   generate_series(1, p.n)) x
        JOIN grid_cells g ON g.id = (CAST(:cells AS bigint[]))[1 + x.i % cardinality(CAST(:cells AS bigint[]))]
    """),
        {"patterns": [p for p, _ in plan], "counts": [n for _, n in plan], "cells": cell_ids, "unit": unit_id},
    )
    values = ", ".join(
        f"('{p}', {i}, '{a}', {'NULL' if f is None else repr(f)}, '{to}', {at}, {'NULL' if dl is None else dl})"
        for p, i, a, f, to, at, dl in steps
    )
    conn.execute(
        text(f"""
        INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, unit_id,
                                 deadline_before, deadline_after)
        SELECT c.id, c.reported_at + s.at_h * interval '1 hour', s.action, s.from_state, s.to_state, 'test', 'system',
               CASE WHEN s.action = 'dispatch' THEN c.unit_id END,
               c.reported_at + lag(s.dl_h) OVER (PARTITION BY c.id ORDER BY s.seq) * interval '1 hour',
               c.reported_at + s.dl_h * interval '1 hour'
        FROM cases c JOIN (VALUES {values}) AS s(pattern, seq, action, from_state, to_state, at_h, dl_h)
          ON s.pattern = c.description
        WHERE c.case_no LIKE 'TM%'
    """)
    )
    conn.execute(
        text("""
        UPDATE cases c SET status = e.to_state
        FROM (SELECT DISTINCT ON (case_id) case_id, to_state FROM case_events ORDER BY case_id, at DESC, id DESC) e
        WHERE e.case_id = c.id AND c.case_no LIKE 'TM%'
    """)
    )


def test_tianmen_december_2016_exactly(conn, org):
    build_tianmen(conn, org["cells"], org["units"]["HW01"])
    dec = compute(conn, period=Period.parse("2016-12"), level="district", today=date(2017, 1, 10))
    v = dec.total.values
    assert (v["reported"], v["valid_reported"], v["registered"], v["dispatched"]) == (1054, 996, 996, 996)
    assert (v["due_close"], v["closed"], v["closed_on_time"]) == (972, 911, 737)
    assert f"{v['close_rate']:.2%}" == "93.72%" and f"{v['closed_on_time_rate']:.2%}" == "75.82%"
    assert (v["handled"], v["handled_on_time"], v["overdue_open"], v["rework"]) == (931, 737, 41, 11)
    assert dec.row("110101").values["due_close"] == 972  # one district: its row is the total
    # the 24 cases whose handling fell due on 2 January are January's, still open and overdue at its end
    jan = compute(conn, period=Period.parse("2017-01"), level="district", today=date(2017, 2, 10)).total.values
    assert (jan["due_close"], jan["closed"], jan["overdue_open"], jan["reported"]) == (24, 0, 24, 0)


# ------------------------------------------------------------------------------------- hand-computed

OCTOBER_TOTAL = {
    "reported": 16,
    "valid_reported": 15,
    "self_handled": 1,
    "verified": 1,
    "verified_on_time": 1,
    "reported_rejected": 1,
    "to_register": 15,
    "reports_registered": 13,
    "reports_undecided": 1,
    "registered": 13,
    "registered_on_time": 12,
    "dispatched": 13,
    "dispatched_on_time": 13,
    "dispatched_correctly": 12,
    "returned": 1,
    "due_handle": 10,
    "handled": 8,
    "handled_on_time": 5,
    "overdue_open": 1,
    "due_paused": 1,
    "due_close": 10,
    "closed": 7,
    "closed_on_time": 5,
    "rework": 1,
    "rework_times": 3,
    "multi_rework": 1,
    "extended": 1,
    "suspended": 2,
    "suspended_end": 1,
    "deferred": 2,
    "deferred_due": 1,
    "urgent_due": 2,
    "urgent_on_time": 1,
    "checked": 11,
    "checked_on_time": 9,
    "closed_in_period": 7,
    "mean_close_hours": 186.43,
    "median_close_hours": 144.0,
    "recurrent": 1,
    "open_end": 8,
    "overdue_end": 4,
}
OCTOBER_RATES = {
    "valid_rate": 15 / 16,
    "register_rate": 13 / 15,
    "registered_on_time_rate": 12 / 13,
    "dispatched_on_time_rate": 1.0,
    "dispatched_correctly_rate": 12 / 13,
    "handle_rate": 0.8,
    "handled_on_time_rate": 0.5,
    "overdue_open_rate": 0.1,
    "close_rate": 0.7,
    "closed_on_time_rate": 0.5,
    "rework_rate": 0.1,
    "extension_rate": 0.1,
    "verified_on_time_rate": 1.0,
    "checked_on_time_rate": 9 / 11,
    "urgent_on_time_rate": 0.5,
    "recurrence_rate": 1 / 15,
}


def test_every_indicator_is_tested():
    assert set(OCTOBER_TOTAL) == {d.key for d in indicators.COUNTS}
    assert set(OCTOBER_RATES) == {r.key for r in indicators.RATES}


def test_october_total(conn, october):
    # A: reported in Sep, due 2 Oct, closed on time. B: due 3 Nov (handled early, not October's).
    # C: late. D: extended before its deadline, now due in Nov. E: extension approved after the first
    # deadline, handled before the new one. F: suspended before due. G: suspended and resumed, on
    # time. H: three reworks, late. I: deferred after due (stays due). J: deferred before due.
    # K: open and overdue. L: public, verified, registered late, returned and re-dispatched to U3.
    # M: self-handled. N: rejected. O: same category and cell as K ten days later. P/Q: urgent.
    # R: all in September.
    v = oct_report(conn).total.values
    assert {k: v[k] for k in OCTOBER_TOTAL} == OCTOBER_TOTAL
    assert {k: round(v[k], 6) for k in OCTOBER_RATES} == {k: round(x, 6) for k, x in OCTOBER_RATES.items()}


def test_registration_rate_is_a_share_of_its_periods_reports(conn, org):
    """A report of 31 October registered on 2 November: October's undecided report, never November's 200 %."""
    cell, cat = org["cells"][0], org["cats"][0]
    add_case(conn, cell, cat, [("report", t(10, 31, 23, 30)), ("register", t(11, 2, 9))])
    add_case(conn, cell, cat, [("report", t(11, 3, 9)), ("register", t(11, 3, 10))])
    october = compute(conn, period=Period.parse("2026-10"), level="district", today=AFTER).total
    assert (october["to_register"], october["reports_registered"], october["reports_undecided"]) == (1, 0, 1)
    assert october["register_rate"] == 0.0
    november = compute(conn, period=Period.parse("2026-11"), level="district", today=AFTER).total
    assert (november["reported"], november["registered"], november["reports_registered"]) == (1, 2, 1)
    assert november["register_rate"] == 1.0


def test_period_boundaries(conn, october):
    sep = compute(conn, period=Period.parse("2026-09"), level="district", today=AFTER).total.values
    assert (sep["reported"], sep["due_close"], sep["closed_on_time"], sep["open_end"]) == (2, 1, 1, 1)
    nov = compute(conn, period=Period.parse("2026-11"), level="district", today=AFTER).total.values
    # B closed on time before its November deadline; D (extended into November) never handled
    assert (nov["due_close"], nov["closed"], nov["closed_on_time"], nov["overdue_open"], nov["extended"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert nov["reported"] == 0 and nov["checked"] == 1
    # a period still running is read up to the end of `today`
    mid = compute(conn, period=Period.parse("2026-10"), level="district", today=date(2026, 10, 15))
    assert mid.cutoff == t(10, 16, 0)
    assert (mid.total["due_close"], mid.total["closed"], mid.total["overdue_open"]) == (5, 3, 1)
    # a finished period reads the same whenever it is computed
    assert oct_report(conn, today=date(2027, 6, 1)).total.values == oct_report(conn).total.values


def test_levels(conn, october):
    units = {r.code: r for r in oct_report(conn, "unit").rows}
    assert set(units) == {"HW01", "ZF01", "ZF02", "ZF03", None}
    assert units["HW01"].attrs == {"kind": "sanitation", "group": "sanitation"}
    u1, u2, u3 = units["HW01"].values, units["ZF01"].values, units["ZF02"].values
    assert (u1["due_close"], u1["closed"], u1["closed_on_time"], u1["rework"], u1["extended"]) == (4, 4, 3, 1, 1)
    assert (u2["due_close"], u2["handled"], u2["handled_on_time"], u2["overdue_open"], u2["deferred_due"]) == (
        5,
        3,
        1,
        1,
        1,
    )
    assert (u3["due_close"], u3["closed_on_time"]) == (1, 1)  # L counts for the unit of its last dispatch
    assert units[None].values["reported"] == 3 and units[None].values["self_handled"] == 1  # M, N, O
    assert units["ZF03"].values["close_rate"] is None  # nothing due: zero denominators are None
    cells = {r.code: r.values for r in oct_report(conn, "cell").rows}
    assert [cells[f"110101001001{i:03d}"]["due_close"] for i in range(1, 5)] == [3, 3, 2, 2]
    assert cells["110101001001001"]["recurrent"] == 1
    for level, code, name in (
        ("community", "110101001001", "test community"),
        ("street", "110101001", "test street"),
        ("district", "110101", "test district"),
    ):
        rep = oct_report(conn, level)
        assert [(r.code, r.name) for r in rep.rows] == [(code, name)]
        assert rep.rows[0].values == rep.total.values
    sup = {r.code: r.values for r in oct_report(conn, "supervisor").rows}
    assert (sup["S1"]["due_close"], sup["S2"]["due_close"]) == (6, 4)
    grids = {r.code: r for r in oct_report(conn, "duty-grid").rows}
    assert grids["DG2"].values["suspended_end"] == 1 and grids["DG1"].attrs["supervisor"] == "S1"
    only_cell1 = oct_report(conn, "cell", area="110101001001001")
    assert [r.code for r in only_cell1.rows] == ["110101001001001"] and only_cell1.total["reported"] == 5


def test_zero_denominators_are_none(conn, org):
    rep = compute(conn, period=Period.parse("2025-01"), level="cell", today=AFTER)
    assert len(rep.rows) == 4
    for row in (*rep.rows, rep.total):
        assert all(row[r.key] is None for r in indicators.RATES)
        assert row["reported"] == 0 and row["mean_close_hours"] is None
    assert indicators.get("close_rate").of({"closed": 3, "due_close": 0}) is None
    assert indicators.get("register_rate").of({"reports_registered": 1, "to_register": 0}) is None


def test_inventory_metrics_rolled_up(conn, org):
    x0, y0 = SMALL_ORIGIN
    for no, valid_to in (("GG1", date(2026, 9, 30)), ("GG2", date(2027, 1, 1))):
        conn.execute(
            text("""
            INSERT INTO billboards (geom, cell_id, ad_no, type, status, valid_to)
            SELECT p.g, (SELECT cell_id FROM cell_for(p.g)), :no, 'pole', 'permitted', :vt
            FROM (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS g) p
        """),
            {"no": no, "vt": valid_to, "x": x0 + 0.5 * SMALL_STEP, "y": y0 + 1.5 * SMALL_STEP},
        )
    cells = {r.code: r for r in oct_report(conn, "cell", today=date(2026, 10, 31)).rows}
    assert cells["110101001001001"]["expired_billboards"] == 1 and cells["110101001001002"]["expired_billboards"] == 0
    assert oct_report(conn, "street", today=date(2026, 10, 31)).rows[0]["expired_billboards"] == 1
    assert oct_report(conn, "supervisor", today=date(2027, 2, 1)).row("S1")["expired_billboards"] == 2
    rep = oct_report(conn, "cell")
    inventory = [d.key for d in rep.definitions if d.kind == "inventory"]
    assert {"expired_billboards", "parking_capacity", "active_sites"} <= set(inventory)


def test_consistent_with_the_workflow(conn, org):
    """Histories written by gridmgr.cases.workflow.apply count as the hand-built ones do."""
    cal = WorkCalendar.load()
    unit = org["units"]["HW01"]
    x0, y0 = SMALL_ORIGIN

    def new(now):
        return report(
            conn,
            workflow.SYSTEM,
            NewCase("0102", x0 + 0.5 * SMALL_STEP, y0 + 0.5 * SMALL_STEP, "supervisor"),
            now=now,
            calendar=cal,
        )

    def act(cid, action, now, **kw):
        return workflow.apply(conn, workflow.SYSTEM, cid, action, now=now, calendar=cal, note="x", **kw)

    a = new(t(10, 13, 9))
    act(a, "register", t(10, 13, 9, 30))
    act(a, "dispatch", t(10, 13, 10), data={"unit_id": unit})  # handling due 14 Oct 10:00 (1d)
    act(a, "request_extension", t(10, 13, 10, 30), data={"limit": "1d"})
    due = act(a, "approve_extension", t(10, 13, 11)).deadline  # moved to 15 Oct 10:00
    act(a, "handle", t(10, 15, 9))
    act(a, "check_fail", t(10, 15, 10))
    act(a, "handle", t(10, 15, 11))  # after the due moment: late
    act(a, "check_pass", t(10, 15, 11, 30))
    act(a, "close", t(10, 15, 12))
    b = new(t(10, 13, 9))
    act(b, "register", t(10, 13, 9, 30))
    act(b, "dispatch", t(10, 13, 10), data={"unit_id": unit})
    act(b, "suspend", t(10, 13, 15))  # paused before due: the clock stops
    due_b = act(b, "resume", t(10, 20, 9)).deadline  # a fresh handling clock
    act(b, "handle", t(10, 20, 16))
    act(b, "check_pass", t(10, 20, 16, 30))
    act(b, "close", t(10, 20, 17))
    assert due == t(10, 15, 10) and due_b == t(10, 21, 9)
    v = oct_report(conn).total.values
    assert (v["due_close"], v["closed"], v["closed_on_time"], v["extended"], v["rework"]) == (2, 2, 1, 1, 1)
    assert (v["registered_on_time"], v["dispatched_on_time"], v["checked"], v["suspended"]) == (2, 2, 3, 1)


# ---------------------------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    "given, kind, first, last, label, previous",
    [
        ("2026-W43", "week", date(2026, 10, 19), date(2026, 10, 25), "2026-W43", "2026-W42"),
        ("2026-W01", "week", date(2025, 12, 29), date(2026, 1, 4), "2026-W01", "2025-W52"),
        ("2026-10", "month", date(2026, 10, 1), date(2026, 10, 31), "2026-10", "2026-09"),
        ("2026-01", "month", date(2026, 1, 1), date(2026, 1, 31), "2026-01", "2025-12"),
        ("2026Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31), "2026Q4", "2026Q3"),
        ("2026Q1", "quarter", date(2026, 1, 1), date(2026, 3, 31), "2026Q1", "2025Q4"),
        ("2026", "year", date(2026, 1, 1), date(2026, 12, 31), "2026", "2025"),
        (
            "2026-10-01..2026-10-15",
            "range",
            date(2026, 10, 1),
            date(2026, 10, 15),
            "2026-10-01..2026-10-15",
            "2026-09-16..2026-09-30",
        ),
    ],
)
def test_period_parse_and_previous(given, kind, first, last, label, previous):
    p = Period.parse(given)
    assert (p.kind, p.first, p.last, p.label, p.previous().label) == (kind, first, last, label, previous)
    assert Period.parse(p.label) == p
    assert p.start == datetime(first.year, first.month, first.day, tzinfo=TZ)
    assert p.start.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("bad", ["2026-13", "2026-W60", "2026Q5", "26", "2026-10-15..2026-10-01", "last month"])
def test_bad_period_is_refused(bad):
    with pytest.raises(InputError, match="bad period"):
        Period.parse(bad)


def test_bad_level_is_refused(conn):
    with pytest.raises(InputError, match="unknown level"):
        compute(conn, period=Period.parse("2026-10"), level="province", today=AFTER)
    assert "duty_grid" in LEVELS


# ------------------------------------------------------------------------------- which cases are read


def _shown(counts: dict) -> dict:
    """The case figures a report shows: the total, and the rows with a figure that is not zero."""
    return {
        key: row
        for key, row in counts.items()
        if key[0] or any(v not in (0, None) for f, v in row.items() if f not in ("key", "total"))
    }


@pytest.fixture
def history(conn, october):
    """October plus cases only one of the sets `gridmgr.analytics.accountability` reads would find for October."""
    c1, c2, c3, _ = october["cells"]
    u1, cat = october["units"]["HW01"], october["cats"]
    done = [("handle", t(12, 1, 9), t(12, 1, 13)), ("check_pass", t(12, 1, 10), t(12, 1, 11)), ("close", t(12, 2, 9))]
    extra = {
        # dispatched in August, untouched through October, closed in December: open at October's cutoff
        "S": add_case(conn, c1, cat[17], std(t(8, 3), t(8, 10, 10), u1) + done),
        # dispatched in July, open ever since
        "T": add_case(conn, c2, cat[18], std(t(7, 1), t(7, 5, 10), u1)),
        # handled and closed in September, ahead of a deadline on 3 October: due in October, no event in it
        "X": add_case(
            conn,
            c3,
            cat[19],
            std(t(9, 20), t(10, 3, 10), u1)
            + [
                ("handle", t(9, 25, 9), t(9, 25, 13)),
                ("check_pass", t(9, 26, 9), t(9, 26, 10)),
                ("close", t(9, 27, 9)),
            ],
        ),
        # reported in September, due in November, handled, checked and closed in October
        "Y": add_case(
            conn,
            c2,
            cat[16],
            std(t(9, 25), t(11, 10, 10), u1)
            + [
                ("handle", t(10, 5, 9), t(10, 5, 13)),
                ("check_pass", t(10, 5, 10), t(10, 5, 11)),
                ("close", t(10, 6, 9)),
            ],
        ),
        # out of the grid, reported and rejected in March
        "U": add_case(conn, c1, cat[0], [("report", t(3, 2, 9), t(3, 2, 10)), ("reject", t(3, 2, 10))]),
    }
    conn.execute(text("UPDATE cases SET cell_id = NULL WHERE id = :u"), {"u": extra["U"]})
    return {**october, "ids": {**october["ids"], **extra}}


@pytest.mark.parametrize(
    "period, today",
    [
        ("2026-10", AFTER),
        ("2026-09", AFTER),
        ("2026-11", AFTER),
        ("2026Q4", AFTER),
        ("2026", AFTER),
        ("2026-10", date(2026, 10, 15)),
        ("2026-W41", AFTER),
        ("2026-03", AFTER),
    ],
)
def test_reading_the_counted_cases_equals_reading_every_case(conn, history, period, today):
    from gridmgr.analytics import accountability

    p = Period.parse(period)
    params = {
        "start": p.start,
        "end": p.end,
        "cutoff": accountability.cutoff_for(p, today),
        "today": today,
        "area": None,
        "recurrence_days": accountability.RECURRENCE_DAYS,
    }
    for level in LEVELS:
        counted = accountability._case_counts(conn, level, params)
        every = accountability._case_counts(conn, level, params, every_case=True)
        assert _shown(counted) == _shown(every), (period, level)


def test_cases_found_by_one_set_only_count(conn, history):
    v = oct_report(conn).total.values
    # S and T open at the cutoff; X due, handled on time and closed
    assert v["open_end"] == OCTOBER_TOTAL["open_end"] + 2 and v["overdue_end"] == OCTOBER_TOTAL["overdue_end"] + 2
    assert (v["due_close"], v["closed"], v["closed_on_time"]) == (11, 8, 6)
    assert v["reported"] == OCTOBER_TOTAL["reported"]
    # Y: a check and a closing in October
    assert (v["checked"], v["closed_in_period"]) == (
        OCTOBER_TOTAL["checked"] + 1,
        OCTOBER_TOTAL["closed_in_period"] + 1,
    )


def test_a_row_of_no_object_is_listed_when_it_has_figures(conn, history):
    assert None not in {r.code for r in oct_report(conn, "cell").rows}  # U: March's, nothing in October
    march = {r.code: r for r in compute(conn, period=Period.parse("2026-03"), level="cell", today=AFTER).rows}
    assert march[None].values["reported"] == 1 and march[None].name == "网格外 out of grid"
    units = {r.code: r for r in oct_report(conn, "unit").rows}
    assert units[None].values["reported"] == 3  # M, N, O: reported in October, never dispatched


@pytest.mark.parametrize("setting", ["on", "off"])
def test_report_leaves_the_jit_setting_as_it_was(conn, october, setting):
    conn.execute(text(f"SET LOCAL jit = {setting}"))
    oct_report(conn, "cell")
    assert conn.execute(text("SELECT current_setting('jit')")).scalar() == setting


def test_a_filtered_count_metric_is_read_through_its_condition():
    from gridmgr.analytics.accountability import _counted_rows

    assert _counted_rows("count(*) FILTER (WHERE f.status NOT IN ('closed', 'rejected'))") == (
        "count(*)",
        "f.status NOT IN ('closed', 'rejected')",
    )
    for other in (
        "count(*)",
        "sum(f.capacity)",
        "count(*) FILTER (WHERE f.a) + count(*) FILTER (WHERE f.b)",
        "count(*) FILTER (WHERE f.a) - 1",
    ):
        assert _counted_rows(other) == (other, "true")
