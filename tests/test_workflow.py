"""The case lifecycle: every action × state × role, scopes, deadlines, the audit trail and dispatch rules."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug.security import generate_password_hash

from gridmgr.cases import dispatch, workflow
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import TRANSITIONS, actor_for, apply
from gridmgr.codes import CASE_STATES
from gridmgr.errors import GridmgrError
from gridmgr.people.accounts import ROLES

from support import SMALL_ORIGIN, SMALL_STEP, record_status

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, working hours
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
CAL = WorkCalendar.load()
PASSWORD_HASH = generate_password_hash("secret-pass")


@pytest.fixture
def org(conn, small_grid):
    """Units, people, a duty grid over all four cells, and one account per role (plus outsiders)."""
    ids = {}
    for code, name, kind in (
        ("JD01", "东华门街道办事处", "street_office"),
        ("ZF01", "第一执法中队", "enforcement_squad"),
        ("HW01", "东城区环卫所", "sanitation"),
        ("ZF02", "第二执法中队", "enforcement_squad"),
    ):
        ids[code] = conn.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
            {"c": code, "n": name, "k": kind},
        ).scalar()
    for cell in small_grid.values():
        for duty, unit in (("territorial", "JD01"), ("enforcement", "ZF01"), ("sanitation", "HW01")):
            conn.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": ids[unit]})
    users = {}
    people = [(r, None) for r in ROLES if r != "unit_handler"] + [("unit_handler", "HW01"), ("unit_handler", "ZF01")]
    for i, (role, unit) in enumerate(people + [("supervisor", None)]):
        pid = conn.execute(
            text("INSERT INTO people (code, name, role, unit_id) VALUES (:c, :n, 'staff', :u) RETURNING id"),
            {"c": f"P{i}", "n": f"人员{i}", "u": ids.get(unit)},
        ).scalar()
        # one hash for all (scrypt is slow on purpose); add_user itself is tested in test_accounts
        uid = conn.execute(
            text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:n, :p, :r, :h) RETURNING id"),
            {"n": f"u{i}", "p": pid, "r": role, "h": PASSWORD_HASH},
        ).scalar()
        key = role if unit is None else f"{role}:{unit}"
        users[key if key not in users else "other_supervisor"] = uid
    sup_person = conn.execute(text("SELECT person_id FROM users WHERE id = :u"), {"u": users["supervisor"]}).scalar()
    g = conn.execute(
        text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES ('DG1', '责任网格1', :p) RETURNING id"),
        {"p": sup_person},
    ).scalar()
    for cell in small_grid.values():
        conn.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cell})
    dispatch.load(conn)
    return {"units": ids, "users": users}


def actor(conn, org, key):
    return actor_for(conn, org["users"][key])


def new_case(conn, org, source="public", category="0102", who="supervisor"):
    return report(
        conn,
        actor(conn, org, who),
        NewCase(category, X0 + 0.5 * D, Y0 + 0.5 * D, source, "垃圾"),
        now=NOW,
        calendar=CAL,
    )


def act(conn, org, who, case_id, action, **kw):
    kw.setdefault("now", NOW)
    return apply(conn, actor(conn, org, who), case_id, action, calendar=CAL, **kw)


def events(conn, case_id):
    return conn.execute(
        text("SELECT action, from_state, to_state, role FROM case_events WHERE case_id = :c ORDER BY id"),
        {"c": case_id},
    ).all()


def test_full_lifecycle_with_rework(conn, org):
    cid = new_case(conn, org)
    act(conn, org, "supervisor", cid, "verify")
    act(conn, org, "receiver", cid, "propose_register")
    act(conn, org, "shift_leader", cid, "register")
    out = act(conn, org, "dispatcher", cid, "dispatch")
    assert out.data["unit_id"] == org["units"]["HW01"]  # 0102 is sanitation work → 环卫所 by rule
    act(conn, org, "unit_handler:HW01", cid, "handle", note="已清理")
    act(conn, org, "supervisor", cid, "check_fail", note="仍有垃圾")
    act(conn, org, "unit_handler:HW01", cid, "handle", note="彻底清理")
    act(conn, org, "supervisor", cid, "check_pass")
    act(conn, org, "shift_leader", cid, "close")
    assert [e.action for e in events(conn, cid)] == [
        "report",
        "verify",
        "propose_register",
        "register",
        "dispatch",
        "handle",
        "check_fail",
        "handle",
        "check_pass",
        "close",
    ]
    status, rework = conn.execute(text("SELECT status, rework_count FROM cases WHERE id = :c"), {"c": cid}).first()
    assert (status, rework) == ("closed", 1)
    assert workflow.replay(conn, cid) == "closed"


def test_public_report_needs_verification_but_supervisor_report_does_not(conn, org):
    pub = new_case(conn, org, "public")
    with pytest.raises(GridmgrError, match="verifies it on site"):
        act(conn, org, "shift_leader", pub, "register")
    own = new_case(conn, org, "supervisor")
    assert act(conn, org, "shift_leader", own, "register").to_state == "registered"


def _case_in(conn, org, state):
    cid = new_case(conn, org, "supervisor")
    record_status(conn, cid, state)
    conn.execute(
        text(
            "UPDATE cases SET status = :s, unit_id = :u, resume_state = 'dispatched', reporter_user_id = :r, "
            "extension_request = CASE WHEN :s IN ('dispatched', 'rework') THEN '{\"limit\": \"1d\"}'::jsonb END "
            "WHERE id = :c"
        ),
        {"s": state, "u": org["units"]["HW01"], "c": cid, "r": org["users"]["supervisor"]},
    )
    return cid


ROLE_KEYS = [r for r in ROLES if r != "unit_handler"] + ["unit_handler:HW01"]


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_action_from_every_state_by_every_role(conn, org, action):
    t = TRANSITIONS[action]
    for state in CASE_STATES:
        conn.execute(text("SAVEPOINT per_state"))
        cid = _case_in(conn, org, state)
        before = len(events(conn, cid))
        for key in ROLE_KEYS:
            role = key.split(":")[0]
            conn.execute(text("SAVEPOINT per_role"))
            kw = {"note": "理由", "data": {"limit": "1d", "photos": ["before.jpg", "after.jpg"]}}
            # in these fixtures an extension request is already pending, so a second one is refused
            should = state in t.sources and role in t.roles and action != "request_extension"
            try:
                act(conn, org, key, cid, action, **kw)
                ok = True
            except GridmgrError as exc:
                ok = False
                assert "case " in str(exc), str(exc)  # every refusal names the case
                assert len(events(conn, cid)) == before  # and writes no audit row
            assert ok == should, f"{action} from {state} by {key}: {'allowed' if ok else 'refused'}"
            conn.execute(text("ROLLBACK TO SAVEPOINT per_role"))
        conn.execute(text("ROLLBACK TO SAVEPOINT per_state"))


def test_scope_other_supervisor_and_other_unit_refused(conn, org):
    cid = new_case(conn, org)
    with pytest.raises(GridmgrError, match="duty grid"):
        act(conn, org, "other_supervisor", cid, "verify")
    act(conn, org, "supervisor", cid, "verify")
    act(conn, org, "shift_leader", cid, "register")
    act(conn, org, "dispatcher", cid, "dispatch")
    with pytest.raises(GridmgrError, match="dispatched to your unit"):
        act(conn, org, "unit_handler:ZF01", cid, "handle", note="x")
    assert not workflow.visible(conn, actor(conn, org, "unit_handler:ZF01"), cid)
    assert workflow.visible(conn, actor(conn, org, "unit_handler:HW01"), cid)
    assert not workflow.visible(conn, actor(conn, org, "other_supervisor"), cid)


def test_deadlines_follow_the_calendar_and_extension(conn, org):
    cid = new_case(conn, org, "supervisor", category="0102")  # register limit 1h
    dl = conn.execute(text("SELECT deadline FROM cases WHERE id = :c"), {"c": cid}).scalar()
    assert dl == datetime(2026, 10, 13, 10, 0, tzinfo=TZ)
    act(conn, org, "shift_leader", cid, "register")
    friday = datetime(2026, 9, 30, 16, 0, tzinfo=TZ)  # before the National Day holiday
    out = act(conn, org, "dispatcher", cid, "dispatch", now=friday)  # handle limit 1d = 7.5 working hours
    assert out.deadline == CAL.add_working_time(friday, "1d")
    assert out.deadline.astimezone(TZ).date() > datetime(2026, 10, 7).date()  # skips the holiday week
    act(conn, org, "unit_handler:HW01", cid, "request_extension", note="需要设备", data={"limit": "2d"})
    out = act(conn, org, "shift_leader", cid, "approve_extension")
    assert out.deadline == CAL.add_working_time(CAL.add_working_time(friday, "1d"), "2d")


def test_suspend_resume_and_self_handle(conn, org):
    cid = new_case(conn, org, "supervisor")
    act(conn, org, "shift_leader", cid, "register")
    act(conn, org, "dispatcher", cid, "dispatch")
    act(conn, org, "shift_leader", cid, "suspend", note="冬季无法施工")
    assert act(conn, org, "shift_leader", cid, "resume").to_state == "dispatched"
    own = new_case(conn, org, "supervisor")
    with pytest.raises(GridmgrError, match="before and an after photo"):
        act(conn, org, "supervisor", own, "self_handle", note="已处理", data={"photos": ["a.jpg"]})
    out = act(conn, org, "supervisor", own, "self_handle", note="已处理", data={"photos": ["a.jpg", "b.jpg"]})
    assert out.to_state == "closed"
    assert conn.execute(text("SELECT self_handled FROM cases WHERE id = :c"), {"c": own}).scalar() is True


def test_case_events_cannot_be_changed(conn, org):
    cid = new_case(conn, org)
    # the app role is not granted these (the owner would still meet the append-only trigger)
    for sql in ("UPDATE case_events SET note = 'x'", "DELETE FROM case_events", "TRUNCATE case_events CASCADE"):
        conn.execute(text("SAVEPOINT s"))
        with pytest.raises(DBAPIError, match="permission denied for table case_events"):
            conn.execute(text(sql))
        conn.execute(text("ROLLBACK TO SAVEPOINT s"))
    assert len(events(conn, cid)) == 1


def test_dispatch_rules_most_specific_wins_then_territorial(conn, org, small_grid):
    cell = small_grid["110101001001003"]
    assert dispatch.resolve(conn, "0102", cell)[0] == org["units"]["HW01"]  # class event:01 → sanitation
    assert dispatch.resolve(conn, "0101", cell)[0] == org["units"]["ZF01"]  # exact 0101 → enforcement
    assert dispatch.resolve(conn, "0504", cell)[0] == org["units"]["ZF01"]  # street order → area's squad
    # a cell-level rule for one category beats the district-wide class rule
    conn.execute(
        text("INSERT INTO dispatch_rules (category, area, unit_id) VALUES ('0504', '110101001001003', :u)"),
        {"u": org["units"]["ZF02"]},
    )
    assert dispatch.resolve(conn, "0504", cell)[0] == org["units"]["ZF02"]
    assert dispatch.resolve(conn, "0504", small_grid["110101001001004"])[0] == org["units"]["ZF01"]
    # no rule and no maintenance unit: the territorial owner (属地兜底)
    unit, why = dispatch.resolve(conn, "C0101", cell)
    assert unit == org["units"]["JD01"] and "属地" in why
