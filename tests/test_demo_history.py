"""The demo's case histories: a year of cases driven through the real workflow, checked by replaying every event."""

from datetime import date, datetime, time
from functools import lru_cache
from time import perf_counter
from zoneinfo import ZoneInfo

from sqlalchemy import text

from gridmgr.cases import dispatch
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import (
    NEEDS_VERIFY,
    PAUSED,
    TERMINAL,
    TRANSITIONS,
    Actor,
    first_step,
    step_limit,
    transition,
)
from gridmgr.demo import history, loader
from gridmgr.demo.history import HistorySummary, drive_histories

ANCHOR = date(2026, 11, 22)
HORIZON = datetime.combine(ANCHOR, time(18, 0), ZoneInfo("Asia/Shanghai"))
CAL = WorkCalendar.load()
SEED = 7
CASE_FIELDS = ("status", "deadline", "deadline_step", "step_started_at", "unit_id", "rework_count", "resume_state")


def _cases(conn) -> dict[int, dict]:
    return {r["id"]: dict(r) for r in conn.execute(text("SELECT * FROM cases ORDER BY id")).mappings()}


def _events(conn) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in conn.execute(text("SELECT * FROM case_events ORDER BY case_id, at, id")).mappings():
        out.setdefault(r["case_id"], []).append(dict(r))
    return out


def _snapshot(conn) -> tuple:
    """Everything the driver writes, for comparing two runs."""
    return (
        conn.execute(
            text(
                f"SELECT id, {', '.join(CASE_FIELDS)}, self_handled, extension_request, "
                "reporter_user_id FROM cases ORDER BY id"
            )
        ).all(),
        conn.execute(
            text(
                "SELECT case_id, at, action, from_state, to_state, user_id, actor, role, note, unit_id, "
                "deadline_before, deadline_after, photos, data FROM case_events ORDER BY id"
            )
        ).all(),
    )


def _replay(case: dict, evs: list[dict], limit, resolved, supervisors: set, staff: set) -> None:
    """Replay one case's events through TRANSITIONS and transition(); they must give the stored row."""
    name = f"case {case['case_no']}"
    assert evs[0]["action"] == "report" and evs[0]["at"] == case["reported_at"], name
    if case["source"] in NEEDS_VERIFY and len(evs) > 1:
        assert evs[1]["action"] == "verify", f"{name}: a public or hotline report is verified first"
    if case["self_handled"]:
        assert [e["action"] for e in evs[1:]] == ["self_handle"] and len(evs[1]["photos"]) == 2, name
    # replay: every event is a valid step through TRANSITIONS, and transition() on the stored events
    # gives the stored deadlines and, at the end, the stored row
    step = first_step(case["source"])
    state = {
        "case_no": case["case_no"],
        "status": "reported",
        "source": case["source"],
        "cell_id": case["cell_id"],
        "unit_id": None,
        "reporter_user_id": case["reporter_user_id"],
        "extension_request": None,
        "resume_state": None,
        "rework_count": 0,
        "step_started_at": case["reported_at"],
        "deadline_step": step,
        "deadline": CAL.add_working_time(case["reported_at"], limit(case["category_code"], step, case["urgency"])),
    }
    for before, e in zip(evs, evs[1:]):
        where = f"{name} {e['action']} at {e['at']}"
        t = TRANSITIONS[e["action"]]
        assert before["at"] < e["at"] <= HORIZON, where
        assert e["from_state"] == before["to_state"] == state["status"], where
        assert e["from_state"] in t.sources and e["role"] in t.roles, where
        if t.scope == "cell":
            assert (e["actor"], case["cell_id"]) in supervisors, where
        if t.scope == "unit":
            assert (e["actor"], state["unit_id"]) in staff, where
        if e["action"] == "dispatch" and not e["data"]["dispatch_rule"].startswith("改派"):
            assert (e["unit_id"], e["data"]["dispatch_rule"]) == resolved(case["category_code"], case["cell_id"]), where
        data = dict(e["data"], photos=e["photos"]) if e["photos"] else dict(e["data"])
        updates, replayed = transition(
            state,
            t,
            Actor(e["user_id"], e["actor"], e["role"]),
            now=e["at"],
            calendar=CAL,
            in_scope=True,
            limit=lambda s: limit(case["category_code"], s, case["urgency"]),
            note=e["note"],
            data=data,
        )
        state.update(updates)
        assert (replayed["to_state"], replayed["deadline_before"], replayed["deadline_after"]) == (
            e["to_state"],
            e["deadline_before"],
            e["deadline_after"],
        ), where
    assert evs[-1]["to_state"] == case["status"], name
    assert {f: state[f] for f in CASE_FIELDS} == {f: case[f] for f in CASE_FIELDS}, name
    assert state.get("self_handled", False) == case["self_handled"], name
    pending, stored = state["extension_request"], case["extension_request"]
    assert (pending is None) == (stored is None), name
    if stored:
        assert datetime.fromisoformat(stored["at"]) == datetime.fromisoformat(pending["at"]), name
        assert (stored["limit"], stored["note"]) == (pending["limit"], pending["note"]), name
    if (
        case["status"] not in TERMINAL + PAUSED
        and state["deadline_step"]
        and not any(e["action"] == "approve_extension" for e in evs)
    ):
        # an open case's deadline is its step's limit from when the step began
        assert case["deadline"] == CAL.add_working_time(
            case["step_started_at"], limit(case["category_code"], case["deadline_step"], case["urgency"])
        ), name


def test_a_year_of_histories_replays_through_the_workflow(fresh_db, tmp_path, monkeypatch):
    _, eng = fresh_db
    with eng.begin() as conn, monkeypatch.context() as m:
        # the demo as imported, all cases `reported`: the loader's own call of the driver is held back
        m.setattr(history, "drive_histories", lambda conn, **kw: HistorySummary(0, 0, {}, 0, 0, 0.0))
        loader.load(conn, "test", tmp_path, today=ANCHOR)
        assert conn.execute(text("SELECT count(*) FROM cases WHERE status <> 'reported'")).scalar() == 0
    with eng.begin() as conn:
        # deterministic: a run rolled back and a second run from the same data write the same rows
        savepoint = conn.begin_nested()
        drive_histories(conn, anchor=ANCHOR, seed=SEED, calendar=CAL)
        first = _snapshot(conn)
        savepoint.rollback()
        # with no accounts yet, people of the roster act in their own names: the desk from one unit
        savepoint = conn.begin_nested()
        conn.execute(text("UPDATE users SET active = false"))
        drive_histories(conn, anchor=ANCHOR, seed=SEED, calendar=CAL)
        desk = conn.execute(
            text("""
            SELECT count(*) FILTER (WHERE e.user_id IS NOT NULL), count(DISTINCT p.unit_id), count(DISTINCT e.actor)
            FROM case_events e LEFT JOIN people p ON p.name = e.actor AND p.role = 'staff'
            WHERE e.role IN ('receiver', 'dispatcher', 'shift_leader')""")
        ).one()
        assert tuple(desk) == (0, 1, 3)
        savepoint.rollback()
        started = perf_counter()
        summary = drive_histories(conn, anchor=ANCHOR, seed=SEED, calendar=CAL)
        elapsed = perf_counter() - started
        assert _snapshot(conn) == first
    assert elapsed < 10, f"the test-size histories took {elapsed:.1f} s"

    with eng.connect() as conn:
        cases, events = _cases(conn), _events(conn)
        limit = lru_cache(maxsize=None)(lambda category, step, urgency: step_limit(conn, category, step, urgency))
        resolved = lru_cache(maxsize=None)(lambda category, cell: dispatch.resolve(conn, category, cell))
        supervisors = set(
            conn.execute(
                text("""
            SELECT p.name, dc.cell_id FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id
            JOIN people p ON p.id = g.supervisor_id
            UNION SELECT p.name, cp.cell_id FROM cell_people cp JOIN people p ON p.id = cp.person_id
            WHERE cp.post = 'supervisor'""")
            ).all()
        )
        staff = set(conn.execute(text("SELECT name, unit_id FROM people WHERE role = 'staff'")).all())
        for cid, case in cases.items():
            _replay(case, events[cid], limit, resolved, supervisors, staff)
    # cases that layer rules opened on the anchor day are live work, not part of the driven year
    cases = {cid: c for cid, c in cases.items() if c["source"] != "rule"}
    events = {cid: e for cid, e in events.items() if cid in cases}
    n = len(cases)
    assert summary.cases == n > 300 and summary.events == sum(len(e) - 1 for e in events.values())

    # the year's outcomes (docs/domain.md §6, §11), loosely for 600 cases
    states = {s: sum(1 for c in cases.values() if c["status"] == s) for s in {c["status"] for c in cases.values()}}
    assert states == summary.states
    assert 0.84 <= states["closed"] / n <= 0.94, states
    assert 0.005 <= states.get("rejected", 0) / n <= 0.05, states
    assert states.get("suspended", 0) + states.get("deferred", 0) >= 1, states
    still_open = [c for c in cases.values() if c["status"] not in TERMINAL + PAUSED]
    assert still_open and len({c["status"] for c in still_open}) >= 2, states
    assert any(c["deadline"] < HORIZON for c in still_open)
    own = [c for c in cases.values() if c["source"] == "supervisor"]
    assert 0.12 <= sum(c["self_handled"] for c in own) / len(own) <= 0.3
    actions = [e["action"] for evs in events.values() for e in evs]
    by_case = {a: sum(1 for evs in events.values() if any(e["action"] == a for e in evs)) for a in set(actions)}
    assert by_case.get("check_fail", 0) <= 0.02 * n
    assert 0.01 * n <= by_case["return"] <= 0.06 * n and 0.01 * n <= by_case["approve_extension"] <= 0.06 * n
    assert by_case["register"] > 0.6 * n and by_case["close"] > 0.6 * n

    # a second run finds nothing left to drive and changes nothing
    with eng.begin() as conn:
        before = _snapshot(conn)
        again = drive_histories(conn, anchor=ANCHOR, seed=SEED + 1, calendar=CAL)
        assert (again.cases, again.events) == (0, 0) and _snapshot(conn) == before
